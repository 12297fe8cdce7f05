"""The page's log proofs (tlog.js) against Python's (bundles/tlog/reader.py), in real Chromium.

Every case of the shared table (tests/tlog/logkit.py: good proofs, tampered
hashes, wrong index or size, forged log signature, missing or unknown or
future cosignatures, quorum not met, wrong origin, bad syntax) goes through the
page's second file input; the page must reach the same code and reason as
Python, and never touch the network.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tlog.logkit import ProofCase, Publisher, make_publisher, proof_cases

from tamizdat.bundles.tlog.reader import LogProofError, check_log_proof
from tamizdat.bundles.verify import verify_bundle

from .conftest import FINAL, VerifierPage

NOW = int(time.time())
LOG_JS = """() => { const d = document.getElementById('verdict').dataset;
  const line = document.getElementById('log-line');
  return [d.verdict || null, d.log || null, d.logReason || null, line ? line.textContent : null]; }"""


@pytest.fixture(scope="module")
def pub(tmp_path_factory: pytest.TempPathFactory) -> Publisher:
    return make_publisher(tmp_path_factory.mktemp("tlog-page"), now=NOW, count=2, label="page test")


@pytest.fixture(scope="module")
def page(browser: Any, page_path: Path) -> Iterator[VerifierPage]:
    context = browser.new_context(viewport={"width": 800, "height": 900}, locale="en-US")
    vp = VerifierPage(context.new_page(), page_path)
    yield vp
    context.close()


def python_verdict(pub: Publisher, bundle_id: str, proof: bytes | None) -> tuple[str, str]:
    vb = verify_bundle(pub.bundles[bundle_id], root_keyid=pub.root_keyid)
    try:
        check_log_proof(bundle_id, proof, vb.root, now=NOW)
    except LogProofError as err:
        return err.code, err.reason
    return "logged", "logged"


def page_verdict(vp: VerifierPage, bundle: Path, key: str, proof: Path | None) -> tuple[Any, ...]:
    """Load the proof (or clear it) with the bundle already chosen; the page's verdict and log outcome."""
    chosen = "() => { const f = document.getElementById('bundle').files; return f.length ? f[0].name : null; }"
    if vp.key != key or vp.page.evaluate(chosen) != bundle.name:
        kind, _, _ = vp.verdict(bundle, key)
        assert kind == "valid"
    vp.page.evaluate("() => document.getElementById('verdict').removeAttribute('data-verdict')")
    vp.page.set_input_files("#proof", [str(proof)] if proof else [])
    vp.page.wait_for_function(
        f"() => {list(FINAL)!r}.includes(document.getElementById('verdict').dataset.verdict)", timeout=60_000
    )
    return tuple(vp.page.evaluate(LOG_JS))


@pytest.mark.parametrize("case", proof_cases(), ids=lambda c: c.name)
def test_same_verdict_as_python(page: VerifierPage, pub: Publisher, case: ProofCase, tmp_path: Path) -> None:
    bid = pub.ids[0]
    proof = case.make(pub.kit, bid)
    path = None
    if proof is not None:
        path = tmp_path / "x.tlog-proof"
        path.write_bytes(proof)
    want = python_verdict(pub, bid, proof)
    assert want[0] == case.expect
    kind, log, reason, line = page_verdict(page, pub.bundles[bid], pub.root_keyid, path)
    assert kind == "valid"  # a bad proof never turns a valid signature invalid
    assert (log, reason) == want, line
    if case.expect == "logged":
        where = f"entry #{pub.kit.index_of(bid)} of {pub.kit.tree.size}"
        assert line.startswith(f"In the publisher's public log as {where}")
    elif case.expect in ("bad-proof", "no-quorum"):
        assert line.startswith("Warning:") and f"{log} · {reason}" in line
    assert page.errors == [] and page.foreign_requests() == []


def test_logged_line_names_witnesses_and_time(page: VerifierPage, pub: Publisher, tmp_path: Path) -> None:
    bid = pub.ids[1]
    kit = pub.kit
    t0 = 1_767_225_600  # 2026-01-01T00:00:00Z
    path = tmp_path / "p.tlog-proof"
    path.write_bytes(kit.proof(kit.index_of(bid), note=kit.note(cosigners=(0, 1, 2), times=(t0 - 60, t0, t0 + 60))))
    kind, log, _, line = page_verdict(page, pub.bundles[bid], pub.root_keyid, path)
    assert (kind, log) == ("valid", "logged")
    assert line == (
        f"In the publisher's public log as entry #{kit.index_of(bid)} of {kit.tree.size}, confirmed by "
        "mirror-a, mirror-b, mirror-c as of January 1, 2026 at 12:00 AM UTC."
    )


def test_no_log_publisher(browser: Any, page_path: Path, tmp_path: Path) -> None:
    p = make_publisher(tmp_path, now=NOW, log=False, count=1, label="page no log")
    bid = p.ids[0]
    context = browser.new_context(locale="ru-RU")
    try:
        vp = VerifierPage(context.new_page(), page_path)
        path = tmp_path / "p.tlog-proof"
        path.write_bytes(p.kit.proof(p.kit.index_of(bid)))
        kind, log, reason, line = page_verdict(vp, p.bundles[bid], p.root_keyid, path)
        assert (kind, log, reason) == ("valid", "no-log", "no-log") == ("valid", *python_verdict(p, bid, None))
        assert line == "Издатель не ведёт открытого журнала."
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["ru", "uk", "fa"])
def test_log_strings_are_translated(fresh_page: Any, pub: Publisher, tmp_path: Path, lang: str) -> None:
    vp = fresh_page(locale=lang)
    bid = pub.ids[0]
    path = tmp_path / "p.tlog-proof"
    path.write_bytes(pub.kit.proof(pub.kit.index_of(bid), note=pub.kit.note(cosigners=(0,))))
    kind, log, _, line = page_verdict(vp, pub.bundles[bid], pub.root_keyid, path)
    assert (kind, log) == ("valid", "no-quorum")
    assert not line.startswith("Warning") and "no-quorum" in line
    kind, log, _, line = page_verdict(vp, pub.bundles[bid], pub.root_keyid, None)
    assert log == "no-proof" and "public log" not in line
    labels = vp.page.evaluate("() => document.querySelector('label[for=proof]').textContent")
    assert "tlog-proof" in labels and "optional" not in labels
