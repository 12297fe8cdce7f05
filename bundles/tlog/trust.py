"""What a root says about the publisher's log: origin, log keys, witness policy, freshness.

docs/transparency.md ("Trust (root.json)"): the root's ``tlog`` section holds
the origin, a tlog-policy text without ``log`` lines and ``max_age``; the log
keys are the root's non-revoked signing keys with purpose ``log``, each used as
an Ed25519 note key named like the origin. :class:`LogTrust` joins them into one
:class:`~.policy.Policy` (one ``log`` line per key, then the root's text).
"""

from __future__ import annotations

from dataclasses import dataclass

from tamizdat.keys.root import Root

from .checkpoint import SignedCheckpoint
from .errors import PolicyError
from .note import SIG_ED25519, format_vkey
from .policy import Policy

BAD_LOG_POLICY = "bad-log-policy"


@dataclass(frozen=True)
class LogTrust:
    """The log a root trusts: checkpoints must be signed by ``origin``'s log keys and meet the quorum."""

    origin: str
    policy: Policy
    max_age: int

    @classmethod
    def from_root(cls, root: Root) -> LogTrust | None:
        """The root's log trust; None when the root keeps no log (no ``tlog`` section).

        Raises :class:`PolicyError` (code ``bad-log-policy``) when the policy
        text does not parse or no log key is delegated.
        """
        if root.tlog is None:
            return None
        keys = root.log_keys()
        if not keys:
            raise PolicyError(
                f"root version {root.version} has a tlog section but no log key (purpose log)", code=BAD_LOG_POLICY
            )
        settings = root.tlog
        lines = "".join(f"log {format_vkey(settings.origin, SIG_ED25519, k.raw)}\n" for k in keys.values())
        try:
            policy = Policy.parse(lines + settings.policy)
        except PolicyError as exc:
            message = exc.message
            try:  # name the line in the root's own text, not in the joined one
                Policy.parse(settings.policy)
            except PolicyError as own:
                message = own.message
            raise PolicyError(f"root version {root.version} log policy: {message}", code=BAD_LOG_POLICY) from None
        return cls(settings.origin, policy, settings.max_age)

    def verify_checkpoint(self, data: bytes, *, not_before: int | None = None) -> SignedCheckpoint:
        """Open a checkpoint of this log (origin pinned) and check the quorum.

        Cosignatures older than ``not_before`` (UNIX seconds) do not count.
        """
        return self.policy.verify_checkpoint(data, origin=self.origin, not_before=not_before)

    def witness_names(self, signed: SignedCheckpoint, *, not_before: int | None = None) -> tuple[str, ...]:
        """Policy names of the witnesses that cosigned ``signed`` (at or after ``not_before``), sorted."""
        return tuple(sorted(self.policy.witnesses_of(signed, not_before=not_before)))

    def fresh_after(self, now: int) -> int:
        """The oldest cosignature time (UNIX seconds) that still makes a checkpoint fresh at ``now``."""
        return now - self.max_age
