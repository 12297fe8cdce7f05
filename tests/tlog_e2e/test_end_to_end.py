"""From the publishing API to a reader's browser, through the log and two witnesses, all real processes.

The origin (`tamizdat serve`) publishes an article sent through the API; its
round logs it; mirror-1 (syncing from the origin) and mirror-2 (syncing from
mirror-1) check the log and cosign; once both did, the origin and both mirrors
write the bundle's ``.tlog-proof``. A reader fetches the share link from
mirror-2 (`tamizdat fetch` saves the bundle and its proof), `tamizdat verify
--require-log` says it was witnessed by both mirrors, and the standalone
verifier page, opened from file:// and given the two files, says the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles.tlog.reader import check_log_proof
from tamizdat.keys.keydir import KeyDir

from .world import WITNESSES, World, cli

pytestmark = pytest.mark.slow

FINAL = ("valid", "invalid", "error", "unsupported", "need-key")
VERDICT_JS = """() => { const d = document.getElementById('verdict').dataset;
  const line = document.getElementById('log-line');
  return [d.verdict || null, d.log || null, line ? line.textContent : null]; }"""


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """origin -> mirror-1 -> mirror-2, both mirrors witnesses (quorum 2); nothing published yet."""
    world = World.create(tmp_path_factory.mktemp("e2e"))
    try:
        world.origin.start()
        world.origin.wait_up()
        world.m1.upstream, world.m2.upstream = world.origin.url, world.m1.url
        world.start_mirrors()
        yield world
    finally:
        world.stop()


def wait_page(page: Any) -> tuple[str | None, str | None, str | None]:
    page.wait_for_function(
        f"() => {list(FINAL)!r}.includes(document.getElementById('verdict').dataset.verdict)", timeout=60_000
    )
    kind, log, line = page.evaluate(VERDICT_JS)
    return kind, log, line


def test_published_article_reaches_a_reader_witnessed_by_both_mirrors(
    chain: World, browser: Any, page_path: Path, tmp_path: Path
) -> None:
    w = chain
    bid = next(iter(w.origin.publish(1).values()))
    w.wait_settled(timeout=90)  # logged, cosigned by both, quorum everywhere
    for node in w.nodes():
        w.wait_for_file(node, f"bundles/{bid}.tlog-proof")
    root = KeyDir(w.keys).chain().newest
    for node in w.nodes():
        proof = node.read(f"bundles/{bid}.tlog-proof")
        verdict = check_log_proof(bid, proof, root, now=int(time.time()))
        assert verdict.witness_names() == list(WITNESSES), node.name

    # A reader follows a share link to mirror-2, the end of the chain.
    out = tmp_path / "reader"
    got = json.loads(cli("fetch", f"{w.m2.url}b/{bid}#k={w.root_keyid}", "-o", out, "--yes", "--json").stdout)
    assert got["log"]["status"] == "logged" and sorted(got["log"]["witnesses"]) == list(WITNESSES)
    bundle, proof_file = out / f"{bid}.zip", out / f"{bid}.tlog-proof"
    assert sorted(p.name for p in out.iterdir()) == sorted([bundle.name, proof_file.name])
    assert proof_file.read_bytes() == w.m2.read(f"bundles/{bid}.tlog-proof")

    text = cli("verify", bundle, "--root-key", w.root_keyid, "--require-log").stdout
    line = next(x for x in text.splitlines() if x.startswith("log:"))
    assert "witnessed by mirror-1, mirror-2 at " in line, text
    doc = json.loads(cli("verify", bundle, "--root-key", w.root_keyid, "--require-log", "--json").stdout)
    assert doc["log"]["status"] == "logged" and sorted(doc["log"]["witnesses"]) == list(WITNESSES)

    # The standalone page, from file://, given the bundle and then its proof.
    context = browser.new_context(viewport={"width": 800, "height": 900}, locale="en-US")
    try:
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{page_path.as_uri()}#k={w.root_keyid}")
        page.set_input_files("#bundle", str(bundle))
        assert wait_page(page)[0] == "valid"
        page.evaluate("() => document.getElementById('verdict').removeAttribute('data-verdict')")
        page.set_input_files("#proof", str(proof_file))
        kind, log, shown = wait_page(page)
        assert (kind, log) == ("valid", "logged"), shown
        assert shown is not None and "confirmed by mirror-1, mirror-2 as of" in shown, shown
        assert [u for u in requests if not u.startswith((page_path.as_uri(), "blob:", "data:"))] == []
    finally:
        context.close()
