"""``tamizdat fetch`` learns the mirror's newer roots: a later log key or a revocation reaches the reader.

Each test serves its own copy of mirror B on 127.0.0.1 whose key directory
moved on after the bundles were made (log key rotated, signing key revoked, or
a forged root N+1), and fetches a bundle that carries only the older chain.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from reader_sample import Server, Site, make_app
from tlog.logkit import LogKit

from tamizdat.bundles.verify import verify_bundle
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir
from tamizdat.server.datadir import DataDir
from tamizdat.server.reader import links
from tamizdat.server.rounds import publish_roots

from .test_fetch_log import fetch

NOW = int(time.time())


class Mirror:
    """A copy of mirror B and of the publisher's key directory, served on 127.0.0.1."""

    def __init__(self, site: Site, base: Path) -> None:
        self.site = site
        shutil.copytree(site.b_data, base / "data")
        shutil.copytree(site.sample.keydir.path, base / "keys")
        self.data = DataDir(base / "data")
        self.keys = KeyDir(base / "keys")
        self.carried = site.sample.keydir.chain().newest.version
        self.server: Server | None = None

    def publish_roots(self) -> None:
        publish_roots(self.data, self.keys.root_documents())

    def put_proof(self, bid: str, log_key: SigningKey) -> None:
        """A proof of every sample bundle under a checkpoint signed by ``log_key`` only."""
        tlog = self.keys.chain().newest.tlog
        assert tlog is not None
        kit = LogKit(now=NOW, origin=tlog.origin, log_key=log_key)
        kit.add_round(sorted(self.site.ids.values()))
        proof = kit.proof(kit.index_of(bid), note=kit.note(cosigners=()))
        (self.data.public / "bundles" / f"{bid}.tlog-proof").write_bytes(proof)

    @property
    def url(self) -> str:
        if self.server is None:
            self.server = Server(make_app(self.data)).start()
        return self.server.url

    def fetch(self, bid: str, out: Path) -> tuple[int, dict[str, object] | None, str]:
        res = fetch([str(links.build_link(self.url, bid, self.site.keyid, [])), "-o", str(out), "--yes", "--json"])
        return res.exit_code, json.loads(res.stdout) if res.exit_code == 0 else None, res.stderr


@pytest.fixture
def mirror(site: Site, tmp_path: Path) -> Iterator[Callable[[], Mirror]]:
    made: list[Mirror] = []

    def make() -> Mirror:
        m = Mirror(site, tmp_path / f"m{len(made)}")
        made.append(m)
        return m

    yield make
    for m in made:
        if m.server is not None:
            m.server.stop()


def _rotated(m: Mirror) -> SigningKey:
    """Rotate the log key (the old one kept) and publish the new root; the new log key."""
    _, new = m.keys.rotate_signing(purposes=("log",))
    m.publish_roots()
    return new


def test_newer_root_on_the_mirror_lets_a_new_log_key_verify(mirror: Callable[[], Mirror], tmp_path: Path) -> None:
    m = mirror()
    new = _rotated(m)
    bid = m.site.ids["en"]
    m.put_proof(bid, new)
    code, doc, err = m.fetch(bid, tmp_path / "out")
    assert code == 0, err
    assert doc is not None
    assert doc["roots"] == {"status": "newer", "version": m.carried + 1}
    assert doc["log"]["status"] == "logged"  # type: ignore[index]
    assert (tmp_path / "out" / f"{bid}.tlog-proof").exists()
    assert "not valid" not in err


def test_without_newer_roots_the_bundles_chain_is_used(mirror: Callable[[], Mirror], tmp_path: Path) -> None:
    m = mirror()
    new = _rotated(m)
    (m.data.roots / f"{m.carried + 1}.json").unlink()  # this mirror never got root N+1
    bid = m.site.ids["en"]
    m.put_proof(bid, new)
    code, doc, err = m.fetch(bid, tmp_path / "out")
    assert code == 0, err
    assert doc is not None
    assert doc["roots"] == {"status": "current", "version": m.carried}
    assert doc["log"]["status"] == "bad-proof"  # type: ignore[index]
    assert not (tmp_path / "out" / f"{bid}.tlog-proof").exists()


def _forge_signature(path: Path) -> None:
    env = json.loads(path.read_bytes())
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[0] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    path.write_bytes(json.dumps(env).encode())


@pytest.mark.parametrize("damage", ["bad-signature", "garbage", "too-large"])
def test_roots_that_do_not_verify_are_ignored_with_a_warning(
    mirror: Callable[[], Mirror], tmp_path: Path, damage: str
) -> None:
    m = mirror()
    new = _rotated(m)
    path = m.data.roots / f"{m.carried + 1}.json"
    if damage == "bad-signature":
        _forge_signature(path)
    elif damage == "garbage":
        path.write_bytes(b"{not json")
    else:
        path.write_bytes(b" " * (300 * 1024))
    bid = m.site.ids["en"]
    m.put_proof(bid, new)
    code, doc, err = m.fetch(bid, tmp_path / "out")
    assert code == 0, err
    assert doc is not None
    roots = doc["roots"]
    assert isinstance(roots, dict) and roots["version"] == m.carried
    assert roots["status"] == "ignored"
    assert "copy of the publisher’s keys is not valid" in err
    assert doc["log"]["status"] == "bad-proof"  # type: ignore[index]  # the new key is not trusted
    assert (tmp_path / "out" / f"{bid}.zip").exists()


def test_a_revocation_on_the_mirror_reaches_the_reader(mirror: Callable[[], Mirror], tmp_path: Path) -> None:
    m = mirror()
    bid = m.site.ids["en"]
    bundle = m.data.public / "bundles" / f"{bid}.zip"
    signer = verify_bundle(bundle, root_keyid=m.site.keyid).signing_keyid
    m.keys.rotate_signing(purposes=("bundle", "index"))
    m.keys.revoke(signer, "stolen")
    m.publish_roots()
    code, _, err = m.fetch(bid, tmp_path / "out")
    assert code == 1 and "key-revoked" in err, err
    assert list((tmp_path / "out").iterdir()) == []
