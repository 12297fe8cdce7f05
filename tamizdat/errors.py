"""The one error hierarchy of tamizdat.

Two roots, as python-tuf separates them: :class:`RejectedError` for data that
fails a rule (bad bytes, bad signatures, hostile archives) and
:class:`NetworkError` for transport trouble (timeouts, refused connections).
:class:`UsageError` covers operator mistakes (missing files, keys that exist).
Every error carries a stable ``code`` (kebab-case, part of the public
interface: ``--json`` output and HTTP error bodies use it) and, for bundle and
index verification, the ``step`` of docs/format.md that rejected the input.
"""

from __future__ import annotations


class TamizdatError(Exception):
    """Base of every error tamizdat raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, step: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.step = step

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.step is not None:
            out["step"] = self.step
        return out


class RejectedError(TamizdatError):
    """Input data broke a rule: it is not trusted, shown or stored."""

    code = "rejected"


class FormatError(RejectedError):
    """A document or archive is malformed (JSON, schema, ZIP structure)."""

    code = "bad-format"


class SignatureError(RejectedError):
    """A signature, key, threshold or root chain check failed."""

    code = "bad-signature"


class ExpiredError(RejectedError):
    """A signed document is past its expiry (freeze attack protection)."""

    code = "expired"


class RollbackError(RejectedError):
    """A signed document is older than one already trusted."""

    code = "rollback"


class NetworkError(TamizdatError):
    """Transport trouble: nothing was learned about the data's validity."""

    code = "network"


class UsageError(TamizdatError):
    """An operator mistake: missing files, existing keys, wrong passphrase."""

    code = "usage"
