"""The witnesses' cosigned views of the log, and what the origin concludes from them.

A policy witness with a URL publishes the checkpoint it accepted at
``<url>/tlog/witness/<hex sha256(origin)>/checkpoint`` (the log signature and
its own cosignature). The origin reads those views to gather cosignatures and,
after every start, to check that it is not behind its own log (a restore from
backup): :func:`judge`.

A view signed only by a log key the newest root revoked (signed before ``keys
revoke``) still answers: it shows nothing the origin must respect, and its
cosignatures of a body the origin re-signed with a trusted key are merged
(:func:`salvage`; a cosignature covers the body, not the log signature). A
view signed by a key the root never delegated stays an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tamizdat.bundles.tlog import Checkpoint, SignedCheckpoint, open_checkpoint
from tamizdat.bundles.tlog.errors import NoteSignatureError
from tamizdat.bundles.tlog.note import (
    SIG_ED25519,
    Ed25519Verifier,
    Note,
    VerifiedSignature,
    Verifier,
    format_vkey,
    open_parsed,
)
from tamizdat.bundles.tlog.policy import Policy, PolicyWitness
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.bundles.tlog.witness import origin_hash
from tamizdat.errors import NetworkError, TamizdatError
from tamizdat.keys.root import Root

from ..httpclient import BoundedClient, ClientConfig

MAX_VIEW_BYTES = 64 * 1024
CLIENT_CONFIG = ClientConfig(
    connect_timeout=5.0, read_timeout=10.0, total_timeout=20.0, max_document_bytes=MAX_VIEW_BYTES
)

OK = "ok"
RESTORED = "restored-from-backup"
WAITING = "waiting-for-witnesses"
FORK_SEEN = "fork-seen"
UNTRUSTED = ("no-log-signature", "unverified-note")  # a note no log key of the newest root signed


def view_url(base: str, origin: str) -> str:
    """Where a witness at ``base`` publishes its view of the log ``origin``."""
    return f"{base.rstrip('/')}/tlog/witness/{origin_hash(origin)}/checkpoint"


@dataclass(frozen=True)
class WitnessView:
    """One witness's answer: a verified checkpoint, nothing (404), or an error."""

    name: str
    answered: bool
    signed: SignedCheckpoint | None = None
    cosigned_at: int | None = None  # this witness's own cosignature time on ``signed``
    error: str | None = None
    untrusted: bytes | None = None  # a note of our origin signed only by a log key the root revoked

    @property
    def checkpoint(self) -> Checkpoint | None:
        return self.signed.checkpoint if self.signed is not None else None


def revoked_log_verifiers(root: Root, origin: str) -> list[Verifier]:
    """The root's revoked log keys, as note verifiers named like the origin."""
    return [
        Ed25519Verifier.from_vkey(format_vkey(origin, SIG_ED25519, e.key.raw))
        for kid, e in sorted(root.signing_keys.items())
        if "log" in e.purposes and kid in root.revoked
    ]


def open_view(data: bytes, trust: LogTrust, witness: PolicyWitness, revoked: Sequence[Verifier] = ()) -> WitnessView:
    """Verify a witness's view: our log's signature (origin pinned) and every known cosignature.

    A view of our origin signed by none of the trusted log keys but by one of
    ``revoked`` is an answer with no checkpoint, kept as ``untrusted``.
    """
    policy = trust.policy
    try:
        signed = open_checkpoint(
            data, policy.log_verifiers(trust.origin), policy.witness_verifiers(), origin=trust.origin
        )
    except NoteSignatureError as exc:
        if exc.code not in UNTRUSTED or not _signed_by(data, revoked):
            raise
        return WitnessView(witness.name, True, untrusted=data)
    return WitnessView(witness.name, True, signed, signed.cosigned_at().get(witness.verifier))


def _signed_by(data: bytes, verifiers: Sequence[Verifier]) -> bool:
    if not verifiers:
        return False
    try:
        open_parsed(Note.parse(data), verifiers)
    except TamizdatError:
        return False
    return True


def salvage(view: WitnessView, text: str, policy: Policy) -> list[VerifiedSignature]:
    """The verified cosignatures of an untrusted view whose body is ``text`` (none if it differs or fails)."""
    if view.untrusted is None:
        return []
    try:
        note = Note.parse(view.untrusted)
        if note.text != text:
            return []
        opened = open_parsed(note, policy.witness_verifiers())
    except TamizdatError:
        return []
    return [v for v in opened.verified if v.timestamp is not None]


async def fetch_view(
    client: BoundedClient, trust: LogTrust, witness: PolicyWitness, revoked: Sequence[Verifier] = ()
) -> WitnessView:
    """GET one witness's view; never raises (errors become an unanswered view)."""
    assert witness.url is not None
    try:
        data = await client.fetch(view_url(witness.url, trust.origin), max_bytes=MAX_VIEW_BYTES)
    except NetworkError as exc:
        if exc.code == "http-404":
            return WitnessView(witness.name, True)  # it has seen nothing of this log yet
        return WitnessView(witness.name, False, error=exc.message)
    except TamizdatError as exc:
        return WitnessView(witness.name, False, error=exc.message)
    try:
        return await asyncio.to_thread(open_view, data, trust, witness, revoked)
    except TamizdatError as exc:
        return WitnessView(witness.name, False, error=f"its view does not verify: {exc.message}")


async def fetch_views(client: BoundedClient, trust: LogTrust, revoked: Sequence[Verifier] = ()) -> list[WitnessView]:
    """The views of every policy witness that has a URL, fetched in parallel (``revoked``: see :func:`open_view`)."""
    witnesses = [w for w in trust.policy.witnesses if w.url]
    return list(await asyncio.gather(*(fetch_view(client, trust, w, revoked) for w in witnesses)))


def ahead(shown: Checkpoint, last: Checkpoint | None) -> bool:
    """Whether ``shown`` (signed by our log key) is one this origin does not know it signed."""
    if last is None:
        return shown.size > 0
    return shown.size > last.size or (shown.size == last.size and shown.root != last.root)


@dataclass(frozen=True)
class Verdict:
    """May the origin sign? ``state`` is ``ok``, ``restored-from-backup`` or ``waiting-for-witnesses``."""

    state: str
    message: str

    @property
    def may_sign(self) -> bool:
        return self.state == OK


def judge(
    views: Sequence[WitnessView], trust: LogTrust, last: Checkpoint | None, local: Checkpoint | None = None
) -> Verdict:
    """Decide whether signing may start, from the witnesses' views (and the public checkpoint file).

    - Any view (or ``local``, the checkpoint found in the public tree) showing a
      checkpoint signed by our log key that is larger than ``last``, or of the
      same size with another root: refuse (``restored-from-backup``).
    - Otherwise, with ``quorum none``: sign.
    - Otherwise the witnesses that answered (a view or 404) must be a quorum's
      worth; if the witnesses with URLs cannot form a quorum at all, every one of
      them must have answered. Until then: ``waiting-for-witnesses``.
    """
    shown = [("the public tree's tlog/checkpoint", local)] if local is not None else []
    shown += [(f"witness {v.name}", v.checkpoint) for v in views if v.checkpoint is not None]
    for who, cp in shown:
        if cp is not None and ahead(cp, last):
            mine = f"size {last.size}" if last is not None else "nothing"
            return Verdict(
                RESTORED,
                f"{who} shows a checkpoint of size {cp.size} signed by this log's key, but this origin's state "
                f"records {mine} as its last signed checkpoint: its state is older than its log (restored from a "
                "backup?). The origin will not sign until that is resolved (docs/operator-origin.md, "
                '"Transparency log").',
            )
    policy = trust.policy
    if policy.quorum is None:
        return Verdict(OK, "quorum none: signing")
    answered = {v.name for v in views if v.answered}
    with_url = {w.name for w in policy.witnesses if w.url}
    if policy.satisfied(answered) or (not policy.satisfied(with_url) and answered >= with_url):
        return Verdict(OK, "the witnesses show nothing newer than this origin's last checkpoint")
    silent = sorted(with_url - answered)
    return Verdict(WAITING, f"waiting for a quorum of witnesses to answer (no answer from {', '.join(silent)})")


def contradicting(
    views: Sequence[WitnessView], last: Checkpoint | None, root_at: Callable[[int], bytes]
) -> list[WitnessView]:
    """Views of a checkpoint no larger than ``last`` whose root is not this origin's tree at that size.

    Such a view is signed by our log key yet shows another history: proof that
    the log key signed a second tree (stolen key, split view). ``root_at(size)``
    is this origin's own root at ``size`` (from its tiles).
    """
    if last is None:
        return []
    out = []
    for v in views:
        cp = v.checkpoint
        if cp is None or cp.size >= last.size:
            continue  # same size or larger: the restore check's business (:func:`judge`)
        if cp.root != root_at(cp.size):
            out.append(v)
    return out
