"""Strict offline verification of a bundle (docs/format.md, steps 1-22).

The numbered steps run in one fixed order, the same in the browser verifier;
each raises a :class:`~tamizdat.errors.RejectedError` carrying its step id and
a stable code. Memory stays flat: entries are streamed through SHA-256 one
chunk at a time and only control entries (<= 1 MiB each) are held whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
from dataclasses import dataclass
from typing import BinaryIO

from tamizdat.errors import FormatError, RejectedError, SignatureError, UsageError
from tamizdat.keys.dsse import BUNDLE_TYPE, Envelope, is_keyid
from tamizdat.keys.root import Root, RootChain, verify_root_chain

from . import zipstrict
from .limits import DEFAULT_LIMITS, Limits
from .manifest import MANIFEST_NAME, ROOTS_PREFIX, Manifest, bundle_id

# A bundle file up to this size is read into memory once; bigger ones are streamed.
READ_ONCE = 4 * 1024 * 1024
_ROOT_NAME = re.compile(r"\Ameta/roots/([1-9][0-9]{0,5})\.json\Z")


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle that passed every step. Only these are ever shown to readers."""

    bundle_id: str
    manifest: Manifest
    chain: RootChain
    signing_keyid: str
    size: int
    entries: tuple[zipstrict.Entry, ...]

    @property
    def root(self) -> Root:
        return self.chain.newest

    def summary(self) -> dict[str, object]:
        m = self.manifest
        return {
            "ok": True,
            "bundle_id": self.bundle_id,
            "publisher": m.publisher,
            "root_keyid": m.root_keyid,
            "root_version": self.root.version,
            "created": m.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kind": m.kind,
            "signing_keyid": self.signing_keyid,
            "size": self.size,
            "articles": [{"id": a.id, "version": a.version, "lang": a.lang, "title": a.title} for a in m.articles],
            "notices": [n.to_json() for n in m.notices],
            "supersedes": list(m.supersedes),
        }


def check_root_keyid(value: str) -> str:
    """Refuse a pinned root key id that is not 64 lowercase hex digits."""
    value = value.strip()
    if not is_keyid(value):
        raise UsageError("a root key id is 64 lowercase hex digits", code="bad-root-keyid")
    return value


def verify_bundle(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    root_keyid: str | None = None,
    trusted_root: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> VerifiedBundle:
    """Verify a bundle against a pinned root key id or a trusted root document.

    Returns a :class:`VerifiedBundle`, or raises a RejectedError (with ``step``
    and ``code``). Exactly one of ``root_keyid`` and ``trusted_root`` is needed.
    """
    if (root_keyid is None) == (trusted_root is None):
        raise UsageError("give a root key id or a trusted root document", code="usage")
    if root_keyid is not None:
        root_keyid = check_root_keyid(root_keyid)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > READ_ONCE:
                return _verify(fh, size, root_keyid, trusted_root, limits)
            data = fh.read(size)  # one read instead of a seek and read per header and entry
        return _verify(io.BytesIO(data), len(data), root_keyid, trusted_root, limits)
    source.seek(0, os.SEEK_END)
    size = source.tell()
    return _verify(source, size, root_keyid, trusted_root, limits)


def _verify(
    fh: BinaryIO, size: int, root_keyid: str | None, trusted_root: bytes | None, limits: Limits
) -> VerifiedBundle:
    # Steps 1-10: archive structure (zipstrict.read_structure).
    entries = zipstrict.read_structure(fh, size, limits)
    by_name = {e.name: e for e in entries}

    # Step 11: the control entries: a manifest and roots 1..N, nothing else under meta/.
    roots: dict[int, zipstrict.Entry] = {}
    for e in entries:
        if not e.name.startswith("meta/") or e.name == MANIFEST_NAME:
            continue
        m = _ROOT_NAME.match(e.name)
        if not m:
            raise FormatError(f"unexpected control entry {e.name!r}", code="bad-control-entry", step="11")
        roots[int(m.group(1))] = e
    if MANIFEST_NAME not in by_name:
        raise FormatError("the bundle has no signed manifest", code="manifest-missing", step="11")
    if not roots:
        raise FormatError("the bundle carries no root.json", code="root-missing", step="11")
    if sorted(roots) != list(range(1, len(roots) + 1)):
        raise FormatError(f"the bundle must carry roots 1..N under {ROOTS_PREFIX}", code="root-missing", step="11")
    control = [by_name[MANIFEST_NAME], *(roots[v] for v in sorted(roots))]
    for e in control:
        if e.size > limits.max_control_bytes:
            raise FormatError(f"{e.name} is too large", code="control-too-large", step="11")
    manifest_bytes, *root_docs = [zipstrict.read_all(fh, e, step=11) for e in control]

    # Steps 12-15: the root chain from the pinned id (or trusted root) to the newest root.
    chain = verify_root_chain(root_docs, pinned_keyid=root_keyid, trusted=trusted_root, steps=("12", "13", "14", "15"))
    root = chain.newest

    # Step 16: the manifest envelope parses strictly with the bundle payload type.
    env = Envelope.from_bytes(manifest_bytes, expected_type=BUNDLE_TYPE, step="16")

    # Step 17: signed by a key the newest root delegates (bytes checked before parsing).
    delegated = {kid: e.key for kid, e in root.signing_keys.items()}
    signers = sorted(env.signed_by(delegated))
    if not signers:
        raise SignatureError(
            "the manifest is not signed by any key of this publisher", code="manifest-bad-signature", step="17"
        )

    # Step 18: the manifest payload parses strictly and is self-consistent.
    manifest = Manifest.from_payload(env.payload)

    # Step 19: the signing key is not revoked, may sign bundles, and was valid at `created`.
    signing_keyid = _authorized(root, signers, manifest.created)

    # Step 20: the manifest names this publisher.
    known_ids = {kid for r in chain.roots for kid in r.root_keys}
    if manifest.root_keyid not in known_ids or manifest.publisher not in {r.publisher for r in chain.roots}:
        raise SignatureError(
            "the manifest names another publisher or root key", code="manifest-root-mismatch", step="20"
        )

    # Step 21: the archive holds exactly the listed files plus the control entries.
    listed = {f.path: f for f in manifest.files}
    control_names = {e.name for e in control}
    for e in entries:
        if e.name not in control_names and e.name not in listed:
            raise RejectedError(f"entry {e.name!r} is not in the manifest", code="entry-not-in-manifest", step="21")
    for name in listed:
        if name not in by_name:
            raise RejectedError(f"listed file {name!r} is missing", code="entry-missing", step="21")

    # Step 22: every listed entry has its size and SHA-256 (and the archive's CRC).
    for e in entries:
        f = listed.get(e.name)
        if f is None:
            continue
        if e.size != f.size:
            raise RejectedError(f"entry {e.name!r} has the wrong size", code="entry-size-mismatch", step="22")
        if e.compressed_size <= zipstrict.CHUNK:  # one read, one inflate call
            digest = hashlib.sha256(zipstrict.read_all(fh, e, step=22))
        else:  # big entries stream: memory stays flat
            digest = hashlib.sha256()
            for chunk in zipstrict.iter_data(fh, e, step=22):
                digest.update(chunk)
        if digest.hexdigest() != f.sha256:
            raise RejectedError(f"entry {e.name!r} does not match its hash", code="entry-hash-mismatch", step="22")

    return VerifiedBundle(
        bundle_id=bundle_id(env.payload),
        manifest=manifest,
        chain=chain,
        signing_keyid=signing_keyid,
        size=size,
        entries=tuple(entries),
    )


def _authorized(root: Root, signers: list[str], created: dt.datetime) -> str:
    first: SignatureError | None = None
    for kid in signers:
        try:
            root.authorize(kid, "bundle", created, step="19")
        except SignatureError as err:
            first = first or err
            continue
        return kid
    assert first is not None
    raise first
