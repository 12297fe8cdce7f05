"""Every trust decision of a mirror, in one class without I/O.

Modelled on python-tuf's ``TrustedMetadataSet``: :class:`TrustedState` holds
the trusted root chain and the committed (served) index with its shards, and
decides about every byte an upstream offers. It never touches the network or
the disk; the caller (``mirror.sync``) fetches, hands over bytes or an open
file, and persists what was accepted.

Rules:

- Roots advance one version at a time: root N+1 must verify under N and
  under its own keys (a jump N -> N+2 is refused). The first root is the
  lowest version signed by the pinned root key id.
- The index is signed by an index key of the newest root, fresh (not
  expired, newest root not expired), and never older than the rollback
  floor; the same version must come back byte-identical.
- Fast-forward recovery: when a newer root no longer authorises the key that
  signed the trusted index (revoked or removed), the rollback floor resets,
  as TUF resets its trusted timestamp when the timestamp key rotates.
- Shards must match the index that lists them (SHA-256, size, count).
- A bundle file must have the listed size and SHA-256, pass full
  verification against the trusted newest root, and carry the listed id.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from tamizdat.bundles.index import (
    BundleEntry,
    Index,
    ShardRef,
    SignedIndex,
    check_fresh,
    check_shard,
    shard_sha256,
    verify_index,
)
from tamizdat.bundles.verify import VerifiedBundle, verify_bundle
from tamizdat.errors import ExpiredError, RejectedError, RollbackError, SignatureError
from tamizdat.keys import timefmt
from tamizdat.keys.dsse import INDEX_TYPE, Envelope
from tamizdat.keys.root import Root, RootChain, parse_root_envelope, verify_root_chain

ROOT_STEPS = ("R1", "R2", "R3", "R4")


@dataclass(frozen=True, slots=True)
class Listing:
    """What a mirror keeps of a shard entry: enough to plan, fetch and check a bundle."""

    id: str
    sha256: str
    size: int
    retracted: bool
    supersedes: tuple[str, ...]

    @classmethod
    def of(cls, entry: BundleEntry) -> Listing:
        return cls(entry.id, entry.sha256, entry.size, entry.retracted is not None, entry.supersedes)


Listings = tuple[Listing, ...]  # one shard's entries, in order


@dataclass(frozen=True)
class Plan:
    """What an index asks a mirror to hold."""

    wanted: Mapping[str, Listing]  # must be present and verified before the index is served
    listed: frozenset[str]
    retracted: frozenset[str]
    superseded: frozenset[str]


@dataclass
class TrustedState:
    """The trusted root chain and the committed index of one publisher (no I/O)."""

    root_keyid: str
    chain: RootChain | None = None
    index: SignedIndex | None = None
    index_floor: int = 0  # an index version below this is a rollback (0: no floor)
    shards: dict[str, Listings] = field(default_factory=dict)
    reverify: bool = False  # a newer root revoked or dropped a signing key: re-check held bundles
    floor_reset: bool = False  # set when fast-forward recovery happened (for reporting)

    # -- restoring -------------------------------------------------------
    @classmethod
    def restore(
        cls,
        root_keyid: str,
        roots: Iterable[bytes],
        index: bytes | None,
        *,
        index_floor: int | None = None,
        reverify: bool = False,
    ) -> TrustedState:
        """Rebuild from persisted documents (re-verified: the chain from the pinned id)."""
        state = cls(root_keyid)
        docs = list(roots)
        if docs:
            state.chain = verify_root_chain(docs, pinned_keyid=root_keyid, steps=ROOT_STEPS)
        if index is not None and state.chain is not None:
            state.index = verify_index(index, state._root_for(index))
            state.index_floor = state.index.index.version if index_floor is None else index_floor
        state.reverify = reverify
        return state

    def _root_for(self, index_bytes: bytes) -> Root:
        """The root an index of ours was accepted under (its own root_version), else the newest."""
        assert self.chain is not None
        version = Index.from_payload(Envelope.from_bytes(index_bytes, expected_type=INDEX_TYPE).payload).root_version
        for root in self.chain.roots:
            if root.version == version:
                return root
        return self.chain.newest

    # -- roots -----------------------------------------------------------
    @property
    def root(self) -> Root | None:
        return None if self.chain is None else self.chain.newest

    @property
    def root_version(self) -> int:
        return 0 if self.chain is None else self.chain.newest.version

    @property
    def root_bytes(self) -> bytes:
        if self.chain is None:
            raise RejectedError("no trusted root yet", code="no-root")
        return self.chain.envelopes[-1]

    def add_root(self, data: bytes) -> Root:
        """Accept the first root (signed by the pinned id) or exactly the next version."""
        if self.chain is None:
            self.chain = verify_root_chain([data], pinned_keyid=self.root_keyid, steps=ROOT_STEPS)
            return self.chain.newest
        _, offered = parse_root_envelope(data, step="R1")
        current = self.chain.newest
        if offered.version <= current.version:
            raise RollbackError(
                f"root version {offered.version} is not newer than trusted version {current.version}",
                code="root-rollback",
                step="R3",
            )
        if offered.version != current.version + 1:
            raise SignatureError(
                f"root chain jumps from version {current.version} to {offered.version}",
                code="root-chain-gap",
                step="R3",
            )
        step = verify_root_chain([data], trusted=self.chain.envelopes[-1], steps=ROOT_STEPS)
        new = step.newest
        self.chain = RootChain((*self.chain.roots, new), (*self.chain.envelopes, data))
        if _dropped_keys(current, new):
            self.reverify = True
        if self.index is not None and self.index_floor > 0:
            try:
                new.authorize(self.index.keyid, "index", self.index.index.created, step="I4")
            except SignatureError:
                # Fast-forward recovery: the key that signed our index is no longer trusted.
                self.index_floor = 0
                self.floor_reset = True
        return new

    # -- index -----------------------------------------------------------
    def check_index(self, data: bytes, now: dt.datetime) -> SignedIndex | None:
        """Verify an offered index; None when it is byte-identical to the trusted one."""
        if self.index is not None and data == self.index.raw:
            return None
        root = self.root
        if root is None:
            raise RejectedError("no trusted root yet", code="no-root")
        signed = verify_index(data, root)
        # Step I5: freshness (and a root that is itself still current).
        check_fresh(signed.index, now)
        if root.expires <= now:
            raise ExpiredError(
                f"newest root (version {root.version}) expired at {timefmt.format(root.expires)}",
                code="root-expired",
                step="I5",
            )
        # Step I6: never back.
        version = signed.index.version
        if version < self.index_floor:
            raise RollbackError(
                f"index version {version} is older than trusted version {self.index_floor}",
                code="rollback",
                step="I6",
            )
        if self.index is not None and version == self.index_floor == self.index.index.version:
            raise RejectedError(
                f"index version {version} differs from the trusted copy of the same version",
                code="index-mismatch",
                step="I6",
            )
        return signed

    def check_shard(self, ref: ShardRef, data: bytes) -> Listings:
        """Step I7/I8: a shard matches the index that lists it, then parses strictly."""
        return tuple(Listing.of(e) for e in check_shard(ref, data).bundles)

    def recall_shard(self, ref: ShardRef, data: bytes) -> Listings:
        """A shard file this mirror accepted before (its own ``public/index/<sha256>.json``).

        Its bytes must still match ``ref`` (SHA-256 and size: they are then
        exactly the bytes that passed :meth:`check_shard` when first accepted),
        so only the fields a mirror needs are read, about 20 times faster than
        the strict parse; anything unexpected falls back to the strict parse.
        """
        if len(data) != ref.size or shard_sha256(data) != ref.sha256:
            raise RejectedError("shard does not match the index that lists it", code="shard-mismatch", step="I7")
        try:
            out = tuple(_listing(item) for item in json.loads(data)["bundles"])
        except (ValueError, KeyError, TypeError):
            return self.check_shard(ref, data)
        if len(out) != ref.count:
            return self.check_shard(ref, data)
        return out

    @staticmethod
    def plan(index: Index, shards: Mapping[str, Sequence[Listing]], *, keep_superseded: bool) -> Plan:
        """The bundles ``index`` (with its checked ``shards``) asks for."""
        entries: dict[str, Listing] = {}
        for ref in index.shards:
            for entry in shards[ref.sha256]:
                if entry.id in entries:
                    raise RejectedError(f"bundle {entry.id[:16]} is listed twice", code="shard-duplicate", step="I8")
                entries[entry.id] = entry
        retracted = frozenset(e.id for e in entries.values() if e.retracted)
        superseded = frozenset(s for e in entries.values() for s in e.supersedes if s in entries)
        wanted = {
            bid: e for bid, e in entries.items() if bid not in retracted and (keep_superseded or bid not in superseded)
        }
        return Plan(wanted, frozenset(entries), retracted, superseded)

    # -- bundles ---------------------------------------------------------
    @staticmethod
    def check_transfer(entry: Listing, size: int, sha256: str) -> None:
        """A downloaded file has exactly the size and SHA-256 the shard lists."""
        if size != entry.size or sha256 != entry.sha256:
            what = f"{size} bytes, the index says {entry.size}" if size != entry.size else "a different SHA-256"
            raise RejectedError(
                f"bundle {entry.id[:16]} does not match its index entry ({what})", code="bundle-mismatch"
            )

    def check_bundle(self, entry: Listing, fh: BinaryIO) -> VerifiedBundle:
        """Full verification against the trusted newest root; the bundle must be the listed one."""
        return check_bundle(entry.id, fh, self.root_bytes)

    # -- commit ----------------------------------------------------------
    def commit(self, signed: SignedIndex, shards: Mapping[str, Listings]) -> None:
        """The index is now served: it becomes the rollback floor."""
        self.index = signed
        self.index_floor = signed.index.version
        self.shards = {ref.sha256: shards[ref.sha256] for ref in signed.index.shards}
        self.reverify = False


def _listing(item: dict[str, object]) -> Listing:
    bid, sha, size, supersedes = item["id"], item["sha256"], item["size"], item["supersedes"]
    if not (isinstance(bid, str) and isinstance(sha, str) and type(size) is int and isinstance(supersedes, list)):
        raise TypeError("unexpected shard entry")
    if not all(isinstance(x, str) for x in supersedes):
        raise TypeError("unexpected shard entry")
    return Listing(bid, sha, size, "retracted" in item, tuple(supersedes))


def _dropped_keys(old: Root, new: Root) -> bool:
    """True when ``new`` revokes or drops a signing key ``old`` trusted."""
    return any(kid in new.revoked or kid not in new.signing_keys for kid in old.signing_keys if kid not in old.revoked)


def check_bundle(bundle_id: str, fh: BinaryIO, root_bytes: bytes) -> VerifiedBundle:
    """The bundle rule on its own (a worker process gets only bytes): verifies under the trusted
    root ``root_bytes`` (and any newer roots the bundle carries that chain from it), and must be
    the bundle ``bundle_id`` the shard lists."""
    verified = verify_bundle(fh, trusted_root=root_bytes)
    if verified.bundle_id != bundle_id:
        raise RejectedError(
            f"file listed as bundle {bundle_id[:16]} is bundle {verified.bundle_id[:16]}",
            code="bundle-id-mismatch",
        )
    return verified
