"""Transparency log trust policies (c2sp.org/tlog-policy) and quorum evaluation.

Lines (items separated by spaces or tabs; ``#`` starts a comment line)::

    log <vkey> [<url>]                       # Ed25519 (type 0x01), key name = origin
    witness <name> <vkey> [<url>]            # cosignature/v1 (type 0x04)
    group <name> <k|any|all> <member>...     # members defined on earlier lines
    quorum <name|none>                       # exactly one

Witness and group names share one namespace (``none`` is reserved) and are
opaque octet strings; a name may be listed as a group member at most once in the
whole file, so each witness counts toward the quorum in one way only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .checkpoint import SignedCheckpoint, open_checkpoint
from .cosignature import CosignatureVerifier
from .errors import NoteFormatError, PolicyError, QuorumError
from .note import Ed25519Verifier, Verifier

MAX_LOGS = 256
MAX_WITNESSES = 256
MAX_GROUPS = 256
MAX_POLICY_BYTES = 1 << 20
NONE = "none"

_BAD_OCTETS = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")
_WS = re.compile(r"[ \t]+")
_DECIMAL = re.compile(r"[1-9][0-9]{0,5}")


@dataclass(frozen=True)
class PolicyLog:
    verifier: Ed25519Verifier
    url: str | None = None

    @property
    def origin(self) -> str:
        return self.verifier.name


@dataclass(frozen=True)
class PolicyWitness:
    name: str
    verifier: CosignatureVerifier
    url: str | None = None


@dataclass(frozen=True)
class PolicyGroup:
    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """A parsed policy. ``quorum`` is None for ``quorum none``."""

    logs: tuple[PolicyLog, ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: tuple[PolicyGroup, ...]
    quorum: str | None

    # -- parsing ------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes | str) -> Policy:
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        if len(raw) > MAX_POLICY_BYTES:
            raise PolicyError("policy is too large", code="bad-policy")
        if _BAD_OCTETS.search(raw):
            raise PolicyError("policy holds a control character other than tab and newline", code="bad-policy")
        text = raw.decode("utf-8", "surrogateescape")  # non-ASCII octets stay opaque and round-trip
        logs: list[PolicyLog] = []
        witnesses: dict[str, PolicyWitness] = {}
        groups: dict[str, PolicyGroup] = {}
        used: set[str] = set()
        quorum: str | None = None
        have_quorum = False
        for number, line in enumerate(text.split("\n"), 1):
            items = [t for t in _WS.split(line) if t]
            if not items or items[0].startswith("#"):
                continue

            def fail(msg: str, n: int = number) -> PolicyError:
                return PolicyError(f"policy line {n}: {msg}", code="bad-policy")

            keyword, args = items[0], items[1:]
            if keyword == "log":
                if not 1 <= len(args) <= 2:
                    raise fail("log <vkey> [<url>]")
                try:
                    lv = Ed25519Verifier.from_vkey(args[0])
                except NoteFormatError as exc:
                    raise fail(f"bad log vkey: {exc.message}") from None
                if any(log.verifier.public_key.raw == lv.public_key.raw for log in logs):
                    raise fail("duplicate log key")
                logs.append(PolicyLog(lv, args[1] if len(args) == 2 else None))
                if len(logs) > MAX_LOGS:
                    raise fail("too many logs")
            elif keyword == "witness":
                if not 2 <= len(args) <= 3:
                    raise fail("witness <name> <vkey> [<url>]")
                name = args[0]
                if name == NONE or name in witnesses or name in groups:
                    raise fail(f"name {name!r} is reserved or already defined")
                try:
                    wv = CosignatureVerifier.from_vkey(args[1])
                except NoteFormatError as exc:
                    raise fail(f"bad witness vkey: {exc.message}") from None
                if any(w.verifier.public_key.raw == wv.public_key.raw for w in witnesses.values()):
                    raise fail("duplicate witness key")
                witnesses[name] = PolicyWitness(name, wv, args[2] if len(args) == 3 else None)
                if len(witnesses) > MAX_WITNESSES:
                    raise fail("too many witnesses")
            elif keyword == "group":
                if len(args) < 3:
                    raise fail("group <name> <k|any|all> <member>...")
                name, k, members = args[0], args[1], args[2:]
                if name == NONE or name in witnesses or name in groups:
                    raise fail(f"name {name!r} is reserved or already defined")
                for m in members:
                    if m not in witnesses and m not in groups:
                        raise fail(f"group member {m!r} is not defined on an earlier line")
                    if m in used:
                        raise fail(f"{m!r} is already a group member")
                    used.add(m)
                if k == "any":
                    threshold = 1
                elif k == "all":
                    threshold = len(members)
                elif _DECIMAL.fullmatch(k) and int(k) <= len(members):
                    threshold = int(k)
                else:
                    raise fail("group threshold must be any, all or 1 <= k <= number of members")
                groups[name] = PolicyGroup(name, threshold, tuple(members))
                if len(groups) > MAX_GROUPS:
                    raise fail("too many groups")
            elif keyword == "quorum":
                if len(args) != 1:
                    raise fail("quorum <name|none>")
                if have_quorum:
                    raise fail("a policy has exactly one quorum line")
                if args[0] != NONE and args[0] not in witnesses and args[0] not in groups:
                    raise fail(f"quorum {args[0]!r} is not defined on an earlier line")
                have_quorum = True
                quorum = None if args[0] == NONE else args[0]
            else:
                raise fail(f"unknown keyword {keyword!r}")
        if not have_quorum:
            raise PolicyError("policy has no quorum line", code="bad-policy")
        return cls(tuple(logs), tuple(witnesses.values()), tuple(groups.values()), quorum)

    def to_text(self) -> str:
        """The policy as C2SP text (logs, witnesses, groups, quorum)."""
        lines = [" ".join(filter(None, ["log", log.verifier.vkey(), log.url])) for log in self.logs]
        lines += [" ".join(filter(None, ["witness", w.name, w.verifier.vkey(), w.url])) for w in self.witnesses]
        for g in self.groups:
            k = "all" if g.threshold == len(g.members) and len(g.members) > 1 else str(g.threshold)
            lines.append(" ".join(["group", g.name, "any" if g.threshold == 1 else k, *g.members]))
        lines.append(f"quorum {self.quorum or NONE}")
        return "\n".join(lines) + "\n"

    # -- evaluation -----------------------------------------------------------------------

    def log_verifiers(self, origin: str | None = None) -> list[Verifier]:
        return [log.verifier for log in self.logs if origin is None or log.origin == origin]

    def witness_verifiers(self) -> list[Verifier]:
        return [w.verifier for w in self.witnesses]

    def satisfied(self, witnessed: Iterable[str]) -> bool:
        """Whether the witnesses named (by their policy names) meet the quorum."""
        have = set(witnessed)
        if self.quorum is None:
            return True
        groups = {g.name: g for g in self.groups}
        memo: dict[str, bool] = {}

        def ok(name: str) -> bool:
            if name not in memo:
                g = groups.get(name)
                memo[name] = name in have if g is None else sum(ok(m) for m in g.members) >= g.threshold
            return memo[name]

        return ok(self.quorum)

    def witnesses_of(self, signed: SignedCheckpoint, *, not_before: int | None = None) -> dict[str, int]:
        """Policy name -> newest cosignature time, for cosignatures at or after ``not_before``."""
        by_key = signed.cosigned_at()
        out: dict[str, int] = {}
        for w in self.witnesses:
            ts = by_key.get(w.verifier)
            if ts is not None and (not_before is None or ts >= not_before):
                out[w.name] = ts
        return out

    def verify_checkpoint(
        self, data: bytes, *, origin: str | None = None, not_before: int | None = None
    ) -> SignedCheckpoint:
        """Open a checkpoint signed by one of the policy's logs and check the quorum.

        ``origin`` pins which log (default: any listed log); cosignatures older
        than ``not_before`` (UNIX seconds) do not count, which turns stale
        cosignatures into a ``no-quorum`` failure.
        """
        logs = self.log_verifiers(origin)
        if not logs:
            raise QuorumError("no log in the policy for this origin", code="unknown-log")
        signed = open_checkpoint(data, logs, self.witness_verifiers(), origin=origin)
        if not self.satisfied(self.witnesses_of(signed, not_before=not_before)):
            raise QuorumError("the checkpoint's cosignatures do not meet the quorum", code="no-quorum")
        return signed
