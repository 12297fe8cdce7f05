"""The publisher's key directory: create keys, rotate, revoke (the only I/O in keys/).

Layout (docs/operator-origin.md)::

    DIR/root.json              newest root (public)
    DIR/roots/<N>.json         every root version (public)
    DIR/signing/<keyid>.pem    online signing keys (mode 0600)
    DIR/root-private/          root private keys: move this folder offline

Each change writes root version N+1 signed by a threshold of version N's root
keys and of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from tamizdat.errors import UsageError
from tamizdat.fsutil import atomic_write

from . import dsse, timefmt
from .ed25519 import SigningKey
from .root import PURPOSES, KeyEntry, LogSettings, Revocation, Root, RootChain, log_settings_problem, verify_root_chain

ROOT_LIFETIME = dt.timedelta(days=365)
SIGNING_LIFETIME = dt.timedelta(days=2 * 365)
ROOT_PRIVATE = "root-private"
SIGNING = "signing"
ONLINE_PURPOSES = ("bundle", "index")
LOG_PURPOSES = ("log",)
DEFAULT_LOG_POLICY = "quorum none\n"
DEFAULT_LOG_MAX_AGE = 7 * 24 * 3600

_README = """These are the publisher's ROOT private keys.

Move this folder to offline storage (an encrypted USB stick kept in a safe
place) and delete it from any machine that is online. It is needed only for
`tamizdat keys rotate-signing`, `keys revoke`, `keys rotate-root` and
`keys log-policy`; pass its
new location with --root-private. The server never reads it.
"""


def _write_root(directory: Path, env: dsse.Envelope, version: int) -> None:
    data = env.to_bytes()
    atomic_write(directory / "roots" / f"{version}.json", data)
    atomic_write(directory / "root.json", data)


def _sign_root(root: Root, signers: Iterable[SigningKey]) -> dsse.Envelope:
    return dsse.sign(dsse.ROOT_TYPE, root.to_payload(), signers)


@dataclass
class KeyDir:
    """A key directory on disk; methods check and then write atomically."""

    path: Path
    root_private: Path | None = None

    @property
    def private_dir(self) -> Path:
        return self.root_private or self.path / ROOT_PRIVATE

    # -- reading ---------------------------------------------------------
    def root_documents(self) -> list[bytes]:
        """Every root version, in order, as stored in ``roots/``."""
        folder = self.path / "roots"
        if not folder.is_dir():
            raise UsageError(f"{self.path} holds no keys (run `tamizdat keys init`)", code="no-keys")
        versions = sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())
        if not versions or versions != list(range(1, len(versions) + 1)):
            raise UsageError(f"{folder} must hold roots 1..N without gaps", code="bad-keydir")
        return [(folder / f"{v}.json").read_bytes() for v in versions]

    def chain(self) -> RootChain:
        """The directory's own root chain, verified from its first root."""
        docs = self.root_documents()
        first = dsse.Envelope.from_bytes(docs[0], expected_type=dsse.ROOT_TYPE)
        first_root = Root.from_payload(first.payload)
        return verify_root_chain(docs, pinned_keyid=sorted(first_root.root_keys)[0])

    def root_keyid(self) -> str:
        """The publisher's identity: the first root key id of root version 1."""
        return sorted(self.chain().first.root_keys)[0]

    def signer(self, purpose: str, at: dt.datetime | None = None) -> SigningKey:
        """The newest usable online key for ``purpose`` whose private file is here."""
        root = self.chain().newest
        moment = at or timefmt.now()
        candidates = sorted(
            (
                e
                for e in root.signing_keys.values()
                if purpose in e.purposes
                and e.keyid not in root.revoked
                and e.not_before <= moment <= e.not_after
                and (self.path / SIGNING / f"{e.keyid}.pem").exists()
            ),
            key=lambda e: (e.not_before, e.keyid),
        )
        if not candidates:
            raise UsageError(
                f"no valid {purpose} signing key in {self.path} (run `tamizdat keys rotate-signing`)",
                code="no-signing-key",
            )
        return SigningKey.load(self.path / SIGNING / f"{candidates[-1].keyid}.pem")

    def root_signers(self, root: Root, passphrase: bytes | None) -> list[SigningKey]:
        """Load a threshold of ``root``'s root private keys."""
        found = []
        for kid in sorted(root.root_keys):
            path = self.private_dir / f"{kid}.pem"
            if path.exists():
                found.append(SigningKey.load(path, passphrase))
        if len(found) < root.threshold:
            raise UsageError(
                f"need {root.threshold} root private key(s) of version {root.version} in "
                f"{self.private_dir}, found {len(found)} (use --root-private)",
                code="no-root-key",
            )
        return found[: root.threshold]

    # -- writing ---------------------------------------------------------
    def init(
        self,
        publisher: str,
        *,
        passphrase: bytes | None = None,
        root_keys: int = 1,
        threshold: int = 1,
        now: dt.datetime | None = None,
        seeds: list[bytes] | None = None,
        log: bool = True,
    ) -> Root:
        """Create root key(s), the online bundle+index key and root version 1.

        With ``log`` (the default) also an online log key and a ``tlog``
        section (origin ``<first root key id>/log``, policy ``quorum none``,
        ``max_age`` 7 days). ``seeds`` (tests) give the root keys, the online
        key and the log key in that order; a missing log seed is derived from
        the online key's seed.
        """
        if (self.path / "root.json").exists() or (self.path / "roots").exists():
            raise UsageError(f"{self.path} already holds keys; refusing to overwrite", code="key-exists")
        if not 1 <= threshold <= root_keys <= 16:
            raise UsageError("need 1 <= threshold <= root keys <= 16", code="usage")
        if not publisher.strip() or len(publisher) > 200:
            raise UsageError("publisher name must be 1 to 200 characters", code="usage")
        moment = now or timefmt.now()
        if seeds is not None:
            roots = [SigningKey.from_seed(s) for s in seeds[:root_keys]]
            online = SigningKey.from_seed(seeds[root_keys])
            log_seed = (
                seeds[root_keys + 1]
                if len(seeds) > root_keys + 1
                else hashlib.sha256(b"tamizdat log key seed: " + seeds[root_keys]).digest()
            )
            log_key = SigningKey.from_seed(log_seed) if log else None
        else:
            roots = [SigningKey.generate() for _ in range(root_keys)]
            online = SigningKey.generate()
            log_key = SigningKey.generate() if log else None
        signing = {online.keyid: _entry(online, moment)}
        tlog = None
        if log_key is not None:
            signing[log_key.keyid] = _entry(log_key, moment, LOG_PURPOSES)
            origin = f"{sorted(k.keyid for k in roots)[0]}/log"
            tlog = LogSettings(origin, DEFAULT_LOG_POLICY, DEFAULT_LOG_MAX_AGE)
        root = Root(
            version=1,
            publisher=publisher.strip(),
            created=moment,
            expires=moment + ROOT_LIFETIME,
            root_keys={k.keyid: k.public for k in roots},
            threshold=threshold,
            signing_keys=signing,
            revoked={},
            tlog=tlog,
        )
        env = _sign_root(root, roots)
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        for folder in (self.private_dir, self.path / SIGNING):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for key in roots:
            key.save(self.private_dir / f"{key.keyid}.pem", passphrase)
        (self.private_dir / "README.txt").write_text(_README)
        online.save(self.path / SIGNING / f"{online.keyid}.pem")
        if log_key is not None:
            log_key.save(self.path / SIGNING / f"{log_key.keyid}.pem")
        _write_root(self.path, env, 1)
        return root

    def _next(self, change: Root, passphrase: bytes | None, new_roots: list[SigningKey] | None = None) -> Root:
        chain = self.chain()
        old = chain.newest
        signers = self.root_signers(old, passphrase)
        own = new_roots if new_roots is not None else [k for k in signers if k.keyid in change.root_keys]
        if new_roots is None and len(own) < change.threshold:
            own = self.root_signers(change, passphrase)
        env = _sign_root(change, [*signers, *own])
        verify_root_chain([*chain.envelopes, env.to_bytes()], pinned_keyid=sorted(chain.first.root_keys)[0])
        _write_root(self.path, env, change.version)
        return change

    def _bumped(self, root: Root, moment: dt.datetime) -> Root:
        return replace(root, version=root.version + 1, created=moment, expires=moment + ROOT_LIFETIME)

    def rotate_signing(
        self,
        *,
        passphrase: bytes | None = None,
        now: dt.datetime | None = None,
        purposes: tuple[str, ...] = ONLINE_PURPOSES,
    ) -> tuple[Root, SigningKey]:
        """Add a new online key for ``purposes``.

        Current keys sharing a purpose with it stop at ``now`` (what they signed
        stays valid); the others (e.g. the log key when rotating the bundle key)
        are kept.
        """
        moment = now or timefmt.now()
        old = self.chain().newest
        if not purposes or any(p not in PURPOSES for p in purposes) or len(set(purposes)) != len(purposes):
            raise UsageError(f"purposes must be a subset of {', '.join(PURPOSES)}", code="usage")
        self.root_signers(old, passphrase)  # fail before writing a key file
        new = SigningKey.generate()
        keys = {
            kid: replace(e, not_after=min(e.not_after, moment))
            if e.not_before < moment and set(e.purposes) & set(purposes)
            else e
            for kid, e in old.signing_keys.items()
        }
        keys[new.keyid] = _entry(new, moment, purposes)
        change = replace(self._bumped(old, moment), signing_keys=keys)
        (self.path / SIGNING).mkdir(mode=0o700, exist_ok=True)
        new.save(self.path / SIGNING / f"{new.keyid}.pem")
        return self._next(change, passphrase), new

    def set_log_policy(
        self,
        policy: str,
        max_age: int | None = None,
        *,
        passphrase: bytes | None = None,
        now: dt.datetime | None = None,
        check: Callable[[Root], object] | None = None,
    ) -> Root:
        """Write root N+1 with this witness policy (and ``max_age``) in its ``tlog`` section.

        A root without a ``tlog`` section gets one (origin ``<root key id>/log``);
        it needs a log key first (``rotate_signing(purposes=("log",))``).
        ``check`` (e.g. ``LogTrust.from_root``) sees the new root before anything
        is signed or written.
        """
        moment = now or timefmt.now()
        chain = self.chain()
        old = chain.newest
        if not old.log_keys():
            raise UsageError(
                "this root has no log key: run `tamizdat keys rotate-signing --purpose log` first", code="usage"
            )
        current = old.tlog
        origin = current.origin if current else f"{sorted(chain.first.root_keys)[0]}/log"
        age = max_age if max_age is not None else current.max_age if current else DEFAULT_LOG_MAX_AGE
        problem = log_settings_problem(origin, policy, age)
        if problem:
            raise UsageError(f"log {problem}", code="usage")
        change = replace(self._bumped(old, moment), tlog=LogSettings(origin, policy, age))
        self.root_signers(old, passphrase)
        if check is not None:
            check(change)
        return self._next(change, passphrase)

    def revoke(
        self, keyid: str, reason: str, *, passphrase: bytes | None = None, now: dt.datetime | None = None
    ) -> Root:
        """Revoke an online key: everything it ever signed stops verifying."""
        moment = now or timefmt.now()
        old = self.chain().newest
        if keyid in old.root_keys:
            raise UsageError("that is a root key: use `tamizdat keys rotate-root`", code="usage")
        if keyid not in old.signing_keys:
            raise UsageError(f"{keyid[:16]} is not a signing key of this publisher", code="usage")
        if keyid in old.revoked:
            raise UsageError(f"{keyid[:16]} is already revoked", code="usage")
        if not reason.strip():
            raise UsageError("give a reason", code="usage")
        revoked = {**old.revoked, keyid: Revocation(keyid, moment, reason.strip()[:1000])}
        return self._next(replace(self._bumped(old, moment), revoked=revoked), passphrase)

    def rotate_root(
        self,
        *,
        passphrase: bytes | None = None,
        new_passphrase: bytes | None = None,
        root_keys: int | None = None,
        threshold: int | None = None,
        now: dt.datetime | None = None,
    ) -> Root:
        """Replace the root key(s): version N+1 is signed by the old and the new keys."""
        moment = now or timefmt.now()
        old = self.chain().newest
        self.root_signers(old, passphrase)
        count = root_keys or len(old.root_keys)
        thr = threshold or min(old.threshold, count)
        if not 1 <= thr <= count <= 16:
            raise UsageError("need 1 <= threshold <= root keys <= 16", code="usage")
        fresh = [SigningKey.generate() for _ in range(count)]
        change = replace(
            self._bumped(old, moment),
            root_keys={k.keyid: k.public for k in fresh},
            threshold=thr,
        )
        for key in fresh:
            key.save(self.private_dir / f"{key.keyid}.pem", new_passphrase)
        result = self._next(change, passphrase, new_roots=fresh)
        retired = self.private_dir / "retired"
        retired.mkdir(mode=0o700, exist_ok=True)
        for kid in old.root_keys:
            src = self.private_dir / f"{kid}.pem"
            if src.exists():
                os.replace(src, retired / src.name)
        return result


def _entry(key: SigningKey, moment: dt.datetime, purposes: tuple[str, ...] = ONLINE_PURPOSES) -> KeyEntry:
    return KeyEntry(key.public, tuple(sorted(purposes)), moment, moment + SIGNING_LIFETIME)
