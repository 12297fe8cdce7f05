"""The origin's view of its key directory: public roots and online signing keys only.

``serve`` never opens ``root-private/`` (it only checks whether the folder is
there, to warn). The chain is re-read when ``root.json`` changes on disk, so
``tamizdat keys rotate-signing`` or ``keys revoke`` take effect at the next
round without a restart.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from tamizdat.errors import UsageError
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import ROOT_PRIVATE, SIGNING, KeyDir
from tamizdat.keys.root import Root, RootChain


@dataclass(frozen=True)
class KeySnapshot:
    """One consistent reading of the key directory."""

    chain: RootChain
    root_keyid: str
    documents: tuple[bytes, ...]  # roots 1..N as stored

    @property
    def root(self) -> Root:
        return self.chain.newest


class Keyring:
    def __init__(self, path: Path):
        self.path = path
        self._keydir = KeyDir(path)
        self._stamp: tuple[int, int, int] | None = None
        self._snapshot: KeySnapshot | None = None
        self._signers: dict[str, SigningKey] = {}

    def root_private_present(self) -> bool:
        """True when root private keys sit in the online key directory (they should be offline)."""
        folder = self.path / ROOT_PRIVATE
        return folder.is_dir() and any(p.suffix == ".pem" for p in folder.iterdir())

    def _disk_stamp(self) -> tuple[int, int, int]:
        st = os.stat(self.path / "root.json")
        return st.st_ino, st.st_size, st.st_mtime_ns

    def snapshot(self) -> KeySnapshot:
        """The current chain (re-read and re-verified when root.json changed)."""
        stamp = self._disk_stamp()
        if self._snapshot is None or stamp != self._stamp:
            docs = tuple(self._keydir.root_documents())
            chain = self._keydir.chain()
            self._snapshot = KeySnapshot(chain, sorted(chain.first.root_keys)[0], docs)
            self._stamp = stamp
        return self._snapshot

    def signer(self, purpose: str, at: dt.datetime) -> SigningKey:
        """The newest usable online key for ``purpose`` at ``at`` (raises UsageError if none)."""
        root = self.snapshot().root
        usable = sorted(
            (
                e
                for e in root.signing_keys.values()
                if purpose in e.purposes
                and e.keyid not in root.revoked
                and e.not_before <= at <= e.not_after
                and (self.path / SIGNING / f"{e.keyid}.pem").exists()
            ),
            key=lambda e: (e.not_before, e.keyid),
        )
        if not usable:
            raise UsageError(
                f"no valid {purpose} signing key in {self.path} (run `tamizdat keys rotate-signing`)",
                code="no-signing-key",
            )
        keyid = usable[-1].keyid
        if keyid not in self._signers:
            self._signers[keyid] = SigningKey.load(self.path / SIGNING / f"{keyid}.pem")
        return self._signers[keyid]

    def log_signers(self, at: dt.datetime) -> list[SigningKey]:
        """Every key a checkpoint is signed with: the newest usable log key first (see :meth:`signer`),
        then every other non-revoked log key of the newest root whose private key is here.

        A rotated-out key keeps signing (its window ended, it is not revoked), so
        readers holding an older root still open new checkpoints; revoking it or
        removing its file from ``signing/`` stops that.
        """
        first = self.signer("log", at)
        root = self.snapshot().root
        out = [first]
        for keyid, e in sorted(root.signing_keys.items()):
            if (
                keyid == first.keyid
                or "log" not in e.purposes
                or keyid in root.revoked
                or e.not_before > at
                or not (self.path / SIGNING / f"{keyid}.pem").exists()
            ):
                continue
            if keyid not in self._signers:
                self._signers[keyid] = SigningKey.load(self.path / SIGNING / f"{keyid}.pem")
            out.append(self._signers[keyid])
        return out
