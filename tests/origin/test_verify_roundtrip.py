"""publish -> bundle -> `tamizdat verify` (the real CLI, as a subprocess) on the file served at /bundles/."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .support import TAMIZDAT, Api, article


async def test_served_bundle_verifies_with_the_cli(api: Api, root_keyid: str, tmp_path: Path) -> None:
    status, out = await api.call("POST", "/api/v1/articles", article("rt", title="Round trip"))
    assert status == 201
    bundle_id = out["versions"][0]["bundle_id"]
    await api.flush()
    resp = await api.client.get(f"/bundles/{bundle_id}.zip")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/zip"
    path = tmp_path / f"{bundle_id}.zip"
    path.write_bytes(await resp.read())
    proc = subprocess.run(
        [TAMIZDAT, "verify", str(path), "--root-key", root_keyid, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] and result["bundle_id"] == bundle_id
    assert result["articles"] == [{"id": "rt", "lang": "en", "title": "Round trip", "version": 1}]
