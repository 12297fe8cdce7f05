"""Packaging in worker processes.

Building a bundle is mostly pure Python (Markdown, templates, the manifest,
the strict verifier), so threads would share one core through the GIL and
starve the event loop. Worker processes (``forkserver``: never a fork of the
threaded server) use every core. A job carries only data: the bundle input,
the root documents and the signing key's id; a worker loads the key from the
key directory's ``signing/`` folder (never ``root-private/``) and caches it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import functools
import hashlib
import multiprocessing
import os
from pathlib import Path

from tamizdat.bundles.content import BundleInput
from tamizdat.bundles.media import CleanImage, clean_image
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import SIGNING
from tamizdat.keys.root import RootChain, verify_root_chain

from . import packager

MAX_AUTO_WORKERS = 4


@functools.lru_cache(maxsize=8)
def _signer(keys_dir: str, keyid: str) -> SigningKey:
    return SigningKey.load(Path(keys_dir) / SIGNING / f"{keyid}.pem")


@functools.lru_cache(maxsize=8)
def _chain(digest: str, documents: tuple[bytes, ...], root_keyid: str) -> RootChain:
    return verify_root_chain(documents, pinned_keyid=root_keyid)


def pack_job(
    inp: BundleInput,
    keys_dir: str,
    signer_keyid: str,
    documents: tuple[bytes, ...],
    root_keyid: str,
    tmp: Path,
    created: dt.datetime,
    index_lang: str | None,
) -> packager.Packed:
    """Runs in a worker: build, sign and verify one bundle into ``tmp``."""
    digest = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in documents)).hexdigest()
    return packager.pack(
        inp,
        signer=_signer(keys_dir, signer_keyid),
        chain=_chain(digest, documents, root_keyid),
        root_keyid=root_keyid,
        tmp=tmp,
        created=created,
        index_lang=index_lang,
    )


def clean_job(raw: bytes) -> CleanImage:
    return clean_image(raw, label="the upload")


def worker_count(setting: int) -> int:
    """``pack_workers`` = 0 means one per CPU core (at most 4)."""
    if setting > 0:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_AUTO_WORKERS, cores))


class PackPool:
    """A lazily started process pool; ``close`` stops it."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # The fork server is a fresh interpreter; without safe-path mode it would put the
            # working directory first on sys.path, and a source checkout's tamizdat/ folder
            # (run from the repository root) would shadow the installed package.
            os.environ.setdefault("PYTHONSAFEPATH", "1")
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["tamizdat.server.packpool"])
            self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        return self._pool

    async def pack(
        self,
        inp: BundleInput,
        *,
        keys_dir: Path,
        signer_keyid: str,
        documents: tuple[bytes, ...],
        root_keyid: str,
        tmp: Path,
        created: dt.datetime,
        index_lang: str | None = None,
    ) -> packager.Packed:
        job = functools.partial(
            pack_job, inp, str(keys_dir), signer_keyid, documents, root_keyid, tmp, created, index_lang
        )
        return await asyncio.get_running_loop().run_in_executor(self._executor(), job)

    async def clean_image(self, raw: bytes) -> CleanImage:
        return await asyncio.get_running_loop().run_in_executor(self._executor(), clean_job, raw)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
