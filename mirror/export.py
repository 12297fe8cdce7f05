"""``mirror export``: the served tree as plain files for a USB stick, a web server, a CDN or a bucket.

The layout is ``DATA/public`` exactly (root.json, roots/<N>.json,
index/<sha256>.json, bundles/<id>.zip and <id>.tlog-proof, the log's
``tlog/`` tree, index.json), with ``index.json`` written last after everything
it lists is in place and flushed, so a reader of a half-written stick sees the
previous complete tree. Log tiles go before ``tlog/checkpoint`` and the proofs
that name it. Bundles are
hard-linked when the destination shares the filesystem, copied otherwise.
Files the exported index no longer lists (retracted, pruned) are removed
afterwards. Importing is simply syncing from the directory as an upstream.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tamizdat.errors import UsageError
from tamizdat.server.datadir import DataDir, sync_filesystem

from .state import StateStore
from .trust import TrustedState

_HEX = re.compile(r"\A[0-9a-f]{64}\.(zip|json|tlog-proof)\Z")
_LOG_LAST = ("tlog/checkpoint", "tlog/index.tlog-proof")  # name a checkpoint: after the tiles


@dataclass
class ExportSummary:
    index_version: int
    bundles: int
    linked: int = 0
    copied: int = 0
    unchanged: int = 0
    removed: int = 0
    bytes: int = 0
    log_files: int = 0


def _same(path: Path, src: Path, size: int, sha256: str) -> bool:
    try:
        if os.path.samefile(path, src):
            return True
        if path.stat().st_size != size:
            return False
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest() == sha256
    except OSError:
        return False


def _place(src: Path, dest: Path, summary: ExportSummary) -> None:
    """Hard-link ``src`` to ``dest`` (copy across filesystems), via a temp name and a rename."""
    tmp = dest.with_name(f".tmp-{dest.name}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
        summary.linked += 1
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
        shutil.copyfile(src, tmp)
        summary.copied += 1
        summary.bytes += tmp.stat().st_size
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


def _write(dest: Path, data: bytes) -> None:
    if dest.exists() and dest.read_bytes() == data:
        return
    tmp = dest.with_name(f".tmp-{dest.name}")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


def export_tree(data: DataDir, root_keyid: str, dest: Path) -> ExportSummary:
    """Write the served, verified tree of ``data`` into ``dest``."""
    store = StateStore(data)
    with store.lock(wait=60.0):
        trust: TrustedState = store.load_trust(root_keyid)
        if trust.index is None or trust.chain is None:
            raise UsageError("nothing to export yet: run `tamizdat mirror sync` first", code="empty")
        dest = dest.resolve()
        if dest == data.public.resolve() or data.root.resolve() in dest.parents or dest == data.root.resolve():
            raise UsageError("export into a folder outside the data directory", code="usage")
        for sub in ("roots", "index", "bundles"):
            (dest / sub).mkdir(parents=True, exist_ok=True)
        signed = trust.index
        shards = {}
        for ref in signed.index.shards:
            shards[ref.sha256] = trust.recall_shard(ref, data.shard_path(ref.sha256).read_bytes())
        plan = trust.plan(signed.index, shards, keep_superseded=True)
        summary = ExportSummary(signed.index.version, 0)
        wrote_bundles: set[str] = set()
        for bundle_id, entry in plan.wanted.items():
            src = data.bundle_path(bundle_id)
            if not src.exists():
                continue  # pruned (keep_superseded = false): the export lists it as this mirror does
            target = dest / "bundles" / f"{bundle_id}.zip"
            wrote_bundles.add(target.name)
            summary.bundles += 1
            if _same(target, src, entry.size, entry.sha256):
                summary.unchanged += 1
                continue
            _place(src, target, summary)
        log_files = _log_files(data.public)
        for rel in log_files:
            if rel not in _LOG_LAST:
                _copy_small(data.public / rel, dest / rel)
        for bundle_id in plan.wanted:
            proof = data.bundles / f"{bundle_id}.tlog-proof"
            if proof.exists() and f"{bundle_id}.zip" in wrote_bundles:
                _copy_small(proof, dest / "bundles" / proof.name)
                wrote_bundles.add(proof.name)
        summary.log_files = len(log_files)
        for ref in signed.index.shards:
            target = dest / "index" / f"{ref.sha256}.json"
            if target.exists() and target.stat().st_size == ref.size:
                continue
            _place(data.shard_path(ref.sha256), target, summary)
        for root, doc in zip(trust.chain.roots, trust.chain.envelopes, strict=True):
            _write(dest / "roots" / f"{root.version}.json", doc)
        _write(dest / "root.json", trust.chain.envelopes[-1])
        sync_filesystem(dest)  # everything index.json lists is on the medium before it
        for rel in _LOG_LAST:
            if rel in log_files:
                _copy_small(data.public / rel, dest / rel)
        _write(dest / "index.json", signed.raw)
        keep_shards = {f"{ref.sha256}.json" for ref in signed.index.shards}
        for sub, keep in (("bundles", wrote_bundles), ("index", keep_shards)):
            for name in os.listdir(dest / sub):
                if (_HEX.match(name) or name.startswith(".tmp-")) and name not in keep:
                    with contextlib.suppress(FileNotFoundError):
                        (dest / sub / name).unlink()
                        summary.removed += 1
        _remove_stale_log(dest, set(log_files))
        sync_filesystem(dest)
        return summary


def _log_files(public: Path) -> list[str]:
    """Every regular file under ``public/tlog`` (relative to ``public``), tiles first."""
    base = public / "tlog"
    out: list[str] = []
    for folder, _dirs, files in os.walk(base):
        for name in files:
            path = Path(folder) / name
            if not name.startswith(".tmp-") and path.is_file() and not path.is_symlink():
                out.append(path.relative_to(public).as_posix())
    return sorted(out, key=lambda rel: (not rel.startswith("tlog/tile/"), rel))


def _copy_small(src: Path, dest: Path) -> None:
    """Copy a small file unless ``dest`` already holds the same bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    _write(dest, src.read_bytes())


def _remove_stale_log(dest: Path, keep: set[str]) -> None:
    """Log files the source no longer has (collected partial tiles, an old index proof)."""
    base = dest / "tlog"
    for folder, _dirs, files in os.walk(base, topdown=False):
        for name in files:
            rel = (Path(folder) / name).relative_to(dest).as_posix()
            if rel not in keep:
                with contextlib.suppress(FileNotFoundError):
                    (Path(folder) / name).unlink()
        with contextlib.suppress(OSError):
            Path(folder).rmdir()  # only when empty
