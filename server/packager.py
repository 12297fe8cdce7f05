"""Packaging: build or re-sign a bundle into ``DATA/tmp`` (CPU work; run in a thread).

Every bundle is verified with the same strict verifier readers use before a
round may publish it. Files land as ``tmp/<bundle id>.zip``; the round renames
them into ``public/bundles/`` and syncs the filesystem once for the batch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tamizdat.bundles.build import build_bundle
from tamizdat.bundles.content import BundleInput
from tamizdat.bundles.index import ArticleInfo
from tamizdat.bundles.manifest import MANIFEST_NAME, Manifest, root_entry_name
from tamizdat.bundles.verify import verify_bundle
from tamizdat.bundles.zipwrite import write_zip
from tamizdat.errors import SignatureError
from tamizdat.keys import dsse
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.root import RootChain


@dataclass(frozen=True)
class Packed:
    """A verified bundle waiting in ``tmp`` for the next round."""

    bundle_id: str
    sha256: str
    size: int
    created: dt.datetime
    kind: str
    articles: tuple[ArticleInfo, ...]
    supersedes: tuple[str, ...]
    signer: str
    path: Path


def file_sha256(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def tmp_path(tmp: Path, bundle_id: str) -> Path:
    return tmp / f"{bundle_id}.zip"


def _finish(work: Path, tmp: Path, root_keyid: str, manifest: Manifest | None = None) -> Packed:
    try:
        checked = verify_bundle(work, root_keyid=root_keyid)
    except BaseException:
        work.unlink(missing_ok=True)
        raise
    final = tmp_path(tmp, checked.bundle_id)
    os.replace(work, final)
    m = manifest or checked.manifest
    size, digest = file_sha256(final)
    return Packed(
        bundle_id=checked.bundle_id,
        sha256=digest,
        size=size,
        created=m.created,
        kind=m.kind,
        articles=tuple(ArticleInfo(a.id, a.version, a.lang, a.title) for a in m.articles),
        supersedes=m.supersedes,
        signer=checked.signing_keyid,
        path=final,
    )


def pack(
    inp: BundleInput,
    *,
    signer: SigningKey,
    chain: RootChain,
    root_keyid: str,
    tmp: Path,
    created: dt.datetime,
    index_lang: str | None = None,
) -> Packed:
    """Build, sign and verify a bundle; it waits in ``tmp`` as ``<bundle id>.zip``."""
    work = tmp / f"build-{uuid.uuid4().hex}.zip"
    try:
        build_bundle(inp, signer=signer, chain=chain, out=work, created=created, durable=False, index_lang=index_lang)
    except BaseException:
        work.unlink(missing_ok=True)
        raise
    return _finish(work, tmp, root_keyid)


def can_resign(chain: RootChain, signer: SigningKey, created: dt.datetime) -> bool:
    """May ``signer`` sign a manifest created at ``created`` (keeping the bundle id)?"""
    try:
        chain.newest.authorize(signer.keyid, "bundle", created, step="19")
    except SignatureError:
        return False
    return True


def read_manifest(path: Path) -> Manifest:
    with zipfile.ZipFile(path) as zf:
        env = dsse.Envelope.from_bytes(zf.read(MANIFEST_NAME), expected_type=dsse.BUNDLE_TYPE)
    return Manifest.from_payload(env.payload)


def resign(src: Path, *, signer: SigningKey, chain: RootChain, root_keyid: str, tmp: Path) -> Packed:
    """Sign the same manifest payload again with ``signer`` and carry the current roots.

    The bundle id (the payload's SHA-256) stays; the file and its hash change.
    The caller checks :func:`can_resign` first.
    """
    with zipfile.ZipFile(src) as zf:
        payload = dsse.Envelope.from_bytes(zf.read(MANIFEST_NAME), expected_type=dsse.BUNDLE_TYPE).payload
        files: dict[str, bytes | Path] = {n: zf.read(n) for n in zf.namelist() if not n.startswith("meta/")}
    manifest = Manifest.from_payload(payload)
    files[MANIFEST_NAME] = dsse.sign(dsse.BUNDLE_TYPE, payload, [signer]).to_bytes()
    for version, doc in enumerate(chain.envelopes, 1):
        files[root_entry_name(version)] = doc
    work = tmp / f"resign-{uuid.uuid4().hex}.zip"
    write_zip(work, files, durable=False)
    return _finish(work, tmp, root_keyid, manifest)


def reissue(
    src: Path,
    *,
    signer: SigningKey,
    chain: RootChain,
    root_keyid: str,
    tmp: Path,
    created: dt.datetime,
) -> Packed:
    """A new bundle with the same files, a new ``created`` and ``supersedes`` += the old id.

    Used when the old bundle's signing key was revoked and the current key's
    window does not cover the old ``created`` (so the same payload cannot be
    signed again): readers get the same articles under a new bundle id.
    """
    with zipfile.ZipFile(src) as zf:
        payload = dsse.Envelope.from_bytes(zf.read(MANIFEST_NAME), expected_type=dsse.BUNDLE_TYPE).payload
        files: dict[str, bytes | Path] = {n: zf.read(n) for n in zf.namelist() if not n.startswith("meta/")}
    old = Manifest.from_payload(payload)
    old_id = hashlib.sha256(payload).hexdigest()
    supersedes = tuple(dict.fromkeys((*old.supersedes, old_id)))
    new = dataclasses.replace(
        old,
        publisher=chain.newest.publisher,
        created=created,
        supersedes=supersedes,
    )
    new_payload = new.to_payload()
    files[MANIFEST_NAME] = dsse.sign(dsse.BUNDLE_TYPE, new_payload, [signer]).to_bytes()
    for version, doc in enumerate(chain.envelopes, 1):
        files[root_entry_name(version)] = doc
    work = tmp / f"reissue-{uuid.uuid4().hex}.zip"
    write_zip(work, files, durable=False)
    return _finish(work, tmp, root_keyid, new)
