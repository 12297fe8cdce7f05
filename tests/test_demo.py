"""The README's first command: `tamizdat demo` brings up an origin and two chained mirrors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tamizdat.bundles.verify import verify_bundle
from tamizdat.server.reader.links import parse_link

TAMIZDAT = str(Path(sys.executable).with_name("tamizdat"))


def test_demo_starts_publishes_and_chains(tmp_path: Path) -> None:
    result = subprocess.run(
        [TAMIZDAT, "demo", "--no-wait", "--json", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["ok"] and info["verified_on_mirror_b"]
    assert len(info["mirrors"]) == 2 and len(info["articles"]) == 2
    link = parse_link(info["share_link"])
    assert link.root_keyid == info["root_keyid"] and link.base == info["mirrors"][1]
    assert link.bundle_id == info["articles"][0]["bundle_id"]
    # Every node holds the same verified bytes.
    work = tmp_path / "demo"
    for node in ("origin", "mirror-a", "mirror-b"):
        for article in info["articles"]:
            held = work / node / "public" / "bundles" / f"{article['bundle_id']}.zip"
            assert verify_bundle(held, root_keyid=info["root_keyid"]).bundle_id == article["bundle_id"]
    # The root private key was moved aside, as an operator moves it offline.
    assert not (work / "keys" / "root-private").exists()
    assert (work / "offline-root-keys").is_dir()
    # Both mirrors witnessed the log; the proof beside the bundle on mirror B passes the
    # readers' check (`tamizdat verify --require-log`) and names both witnesses.
    assert "witnessed by mirror-a, mirror-b" in info["log"]
    first = info["articles"][0]["bundle_id"]
    held = work / "mirror-b" / "public" / "bundles" / f"{first}.zip"
    checked = subprocess.run(
        [TAMIZDAT, "verify", str(held), "--root-key", info["root_keyid"], "--require-log", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert sorted(json.loads(checked.stdout)["log"]["witnesses"]) == ["mirror-a", "mirror-b"]
