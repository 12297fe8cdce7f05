"""After `keys revoke` of the key that signed published bundles, the next round re-signs them.

Same bundle id when the current key's window covers the bundle's ``created``
(the same payload is signed again); otherwise a re-issue: new ``created``, a
new id that supersedes the old one, and the old entry is retracted with a reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from pathlib import Path

from tamizdat.bundles.verify import verify_bundle
from tamizdat.errors import SignatureError
from tamizdat.keys import timefmt
from tamizdat.keys.keydir import KeyDir
from tamizdat.server.datadir import DataDir

from .conftest import AppFactory
from .support import Api, article, read_index, wait_for


async def _entries(api: Api, keys_dir: Path) -> dict[str, object]:
    """Bundles of the served index; empty while it is still signed by the just-revoked key."""
    try:
        _, shards = await read_index(api.client, keys_dir)
    except SignatureError:
        return {}
    return {e.id: e for s in shards for e in s.bundles}


async def test_revoked_key_same_id_when_window_allows(
    make_api: AppFactory, tmp_path: Path, data_dir: Path, root_keyid: str
) -> None:
    # keys made in the past, so that a new key can start before the bundle's `created`
    keys = tmp_path / "old-keys"
    start = timefmt.now() - dt.timedelta(minutes=10)
    kd = KeyDir(keys)
    kd.init("Test Newsroom", now=start)
    api = await make_api(keys_dir=keys)
    _, out = await api.call("POST", "/api/v1/articles", article("r1"))
    bid = out["versions"][0]["bundle_id"]
    await api.flush()
    old_hash = hashlib.sha256(DataDir(data_dir).bundle_path(bid).read_bytes()).hexdigest()
    old_key = next(iter(kd.chain().newest.signing_keys_for("bundle")))
    _, new_key = kd.rotate_signing(now=start + dt.timedelta(minutes=1))
    kd.revoke(old_key, "leaked")

    async def resigned() -> bool:
        entry = (await _entries(api, keys)).get(bid)
        return entry is not None and entry.sha256 != old_hash  # type: ignore[attr-defined]

    await wait_for(resigned, timeout=10)
    path = DataDir(data_dir).bundle_path(bid)
    checked = verify_bundle(path, root_keyid=kd.root_keyid())
    assert checked.bundle_id == bid and checked.signing_keyid == new_key.keyid
    assert checked.root.version == 3
    _, got = await api.call("GET", "/api/v1/articles/r1")
    assert got["versions"][0]["bundle_id"] == bid


async def test_revoked_key_reissue_when_window_does_not_cover(
    api: Api, offline_keydir: KeyDir, keys_dir: Path, data_dir: Path, root_keyid: str
) -> None:
    _, out = await api.call("POST", "/api/v1/articles", article("r2"))
    old_id = out["versions"][0]["bundle_id"]
    await api.flush()
    await asyncio.sleep(1.1)  # the new key's window starts after the bundle's `created`
    old_key = next(iter(offline_keydir.chain().newest.signing_keys_for("bundle")))
    _, new_key = offline_keydir.rotate_signing()
    offline_keydir.revoke(old_key, "seized laptop")

    async def reissued() -> bool:
        _, got = await api.call("GET", "/api/v1/articles/r2")
        done = got["versions"][0]["bundle_id"] != old_id and got["state"] == "published"
        return done and not DataDir(data_dir).bundle_path(old_id).exists()

    await wait_for(reissued, timeout=10)
    _, got = await api.call("GET", "/api/v1/articles/r2")
    new_id = got["versions"][0]["bundle_id"]
    entries = await _entries(api, keys_dir)
    old, new = entries[old_id], entries[new_id]
    assert old.retracted is not None and "revoked" in old.retracted.reason  # type: ignore[attr-defined]
    assert old_id in new.supersedes  # type: ignore[attr-defined]
    assert not DataDir(data_dir).bundle_path(old_id).exists()
    checked = verify_bundle(DataDir(data_dir).bundle_path(new_id), root_keyid=root_keyid)
    assert checked.signing_keyid == new_key.keyid
    index, _ = await read_index(api.client, keys_dir)
    assert index.root_version == 3


async def test_no_signing_key_left(api: Api, offline_keydir: KeyDir, keys_dir: Path) -> None:
    """Revoking the only key: writes answer 503 no-signing-key, the round error shows in the status."""
    offline_keydir.revoke(next(iter(offline_keydir.chain().newest.signing_keys_for("bundle"))), "lost")
    status, body = await api.call("POST", "/api/v1/articles", article("late"))
    assert status == 503 and body["error"]["code"] == "no-signing-key"

    async def reported() -> bool:
        return bool((await api.call("GET", "/api/v1/status"))[1]["last_round_error"])

    await wait_for(reported, timeout=10)
    assert (await api.client.get("/root.json")).status == 200
