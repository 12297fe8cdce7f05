"""The mirror's witness key: ``DATA/state/witness.key`` (Ed25519, mode 0600), created on first use.

Its note key name is the ``witness_name`` setting; when that is empty the
first use derives one (the host of ``public_url``, else ``mirror-<first 8 hex
of the key id>``) and records it, so the verifier key (vkey) the publisher
puts in its witness policy never changes behind the operator's back.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.note import valid_key_name
from tamizdat.errors import UsageError
from tamizdat.fsutil import fsync_dir
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.server.datadir import DataDir

KEY_FILE = "witness.key"


@dataclass(frozen=True)
class WitnessKey:
    name: str
    key: SigningKey
    created: bool

    def signer(self, clock: Callable[[], int]) -> CosignatureSigner:
        return CosignatureSigner(self.name, self.key, clock)

    def vkey(self) -> str:
        """The C2SP verifier key (cosignature/v1, type 0x04) for the publisher's policy."""
        return CosignatureSigner(self.name, self.key).verifier.vkey()


def derive_name(public_url: str, key: SigningKey) -> str:
    """The host of ``public_url`` when it makes a valid key name, else ``mirror-<8 hex of the key id>``."""
    host = urlsplit(public_url).hostname if public_url else None
    if host and valid_key_name(host):
        return host
    return f"mirror-{key.keyid[:8]}"


def check_name(name: str) -> str:
    if not valid_key_name(name) or len(name) > 128:
        raise UsageError(
            f"witness name {name!r} is not a valid key name (no spaces, no '+', at most 128 characters)",
            code="bad-witness-name",
        )
    return name


def _create(data: DataDir) -> tuple[SigningKey, bool]:
    """Load the key, or write a new one atomically (never replacing one another process wrote)."""
    path = data.state / KEY_FILE
    if path.exists():
        return SigningKey.load(path), False
    data.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = SigningKey.generate()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-witness-", dir=data.state)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.to_pem())
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # fails if another process got there first: use its key
        except FileExistsError:
            return SigningKey.load(path), False
        fsync_dir(data.state)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return key, True


def ensure_witness_key(data: DataDir, *, name: str | None = None) -> WitnessKey:
    """The witness key and its name, creating the key (and recording the name) on first use.

    ``name`` (from ``witness-key --name``) is recorded when no name is recorded
    yet; a different name for an existing key is refused, since it would change
    the vkey the publisher pinned.
    """
    settings = data.settings()
    recorded = str(settings.get("witness_name") or "")
    if name is not None:
        check_name(name)
    key_exists = (data.state / KEY_FILE).exists()
    if name is not None and recorded and name != recorded and key_exists:
        raise UsageError(
            f"the witness key is already named {recorded!r}; a new name would change its vkey "
            "(edit witness_name in settings.toml if the publisher agrees)",
            code="witness-name-recorded",
        )
    key, created = _create(data)
    if name is not None and (created or not recorded):
        chosen = name
    else:
        chosen = check_name(recorded or derive_name(str(settings.get("public_url") or ""), key))
    if chosen != recorded:
        saved = data.settings()
        if not data.settings_path.exists():
            saved["role"] = "mirror"
        saved["witness_name"] = chosen
        data.save_settings(saved)
    return WitnessKey(chosen, key, created)
