"""Load: 500 concurrent readers on a mirror process while it syncs new articles from a live origin.

Two wrk processes run at once against one mirror on 127.0.0.1: 250 connections
on reader pages (``/``, ``/?lang=ru``, ``/v/<id>/1``) and 250 on bundle
downloads (``/bundles/<id>.zip``), keep-alive, each request's path drawn at
random. Meanwhile the origin (`tamizdat serve`) publishes an article every
0.3 s and the mirror syncs every second. Passing means: no error at all (no
answer >= 400, no connection, read, write or timeout error), at least one
sync that changed the served index during the load, and afterwards every
article the origin acknowledged served by the mirror from a consistent store.
Latency percentiles go to the figures (and docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from .conftest import Figures
from .loadgen import Wrk, wrk_binary
from .support import FULL, MirrorDaemon, Origin, article, check_store, free_port, get, wait_until

SECONDS = 15.0 if FULL else 5.0
ARTICLES = 100 if FULL else 40
PAGE_CONNECTIONS = 250
BUNDLE_CONNECTIONS = 250
PUBLISH_EVERY = 0.3

needs_wrk = pytest.mark.skipif(wrk_binary() is None, reason="wrk is not installed (Debian package wrk)")


def _seed(origin: Origin, count: int) -> list[str]:
    bundle_ids = []
    for n in range(count):
        status, body = origin.publish(article(n, prefix="load"))
        assert status == 201, body
        bundle_ids.append(body["versions"][0]["bundle_id"])
    wait_until(lambda: set(bundle_ids) <= set(origin.listed()), 60, "the origin to list the seed articles")
    return bundle_ids


def _synced(mirror: MirrorDaemon, ids: list[str]) -> bool:
    return all(get(f"{mirror.url}/bundles/{bid}.zip", timeout=5)[0] == 200 for bid in ids)


@pytest.mark.slow
def test_mirror_serves_reader_pages(origin: Origin, tmp_path: Path) -> None:
    """`tamizdat mirror run` serves the reader pages (DESIGN: "A mirror runs the same reader/download app")."""
    [bid] = _seed(origin, 1)
    mirror = MirrorDaemon(tmp_path / "mirror", origin.root_keyid, origin.url)
    try:
        wait_until(lambda: _synced(mirror, [bid]), 60, "the mirror to sync")
        home, article_page = get(f"{mirror.url}/")[0], get(f"{mirror.url}/v/{bid}/1")[0]
        assert (home, article_page) == (200, 200)
    finally:
        mirror.proc.stop()


@needs_wrk
@pytest.mark.slow
def test_500_readers_while_the_mirror_syncs(origin: Origin, tmp_path: Path, figures: Figures) -> None:
    ids = _seed(origin, ARTICLES)
    data = tmp_path / "mirror"
    mirror = MirrorDaemon(data, origin.root_keyid, origin.url)
    try:
        wait_until(lambda: _synced(mirror, ids), 120, "the mirror's first sync")
        pages = ["/", "/?lang=ru", *(f"/v/{bid}/1" for bid in ids)]
        bundles = [f"/bundles/{bid}.zip" for bid in ids]
        for path in pages:  # warm: every page answers once before the load
            status, _ = get(mirror.url + path)
            assert status == 200, (path, status)
        version_before = mirror.index_version()

        stop = threading.Event()
        acknowledged: list[str] = []
        versions: set[int] = set()

        def publish() -> None:
            n = ARTICLES
            while not stop.is_set():
                status, body = origin.publish(article(n, prefix="load"))
                if status == 201:
                    acknowledged.append(body["versions"][0]["bundle_id"])
                n += 1
                stop.wait(PUBLISH_EVERY)

        def watch() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    versions.add(mirror.index_version())
                stop.wait(0.5)

        threads = [threading.Thread(target=publish), threading.Thread(target=watch)]
        for t in threads:
            t.start()
        try:
            runs = [
                Wrk("pages", mirror.url, pages, connections=PAGE_CONNECTIONS, seconds=SECONDS, seed=1),
                Wrk("bundles", mirror.url, bundles, connections=BUNDLE_CONNECTIONS, seconds=SECONDS, seed=2),
            ]
            results = [r.result(timeout=SECONDS + 120) for r in runs]
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        version_after = mirror.index_version()
        for r in results:
            figures.add(r.line(), **r.to_json())
        figures.add(
            f"mirror index version {version_before} -> {version_after} during the load "
            f"({len(versions)} versions seen); {len(acknowledged)} articles published meanwhile"
        )
        for r in results:
            assert r.requests > 0, r
            assert r.error_count == 0, r.line()
        assert len(versions) >= 2 and version_after > version_before, "the mirror did not sync during the load"
        assert acknowledged, "the origin published nothing during the load"
        wait_until(lambda: _synced(mirror, acknowledged), 120, "the mirror to serve every acknowledged article")
        assert mirror.proc.alive()
        report = check_store(data / "public", origin.root(), origin.root_keyid)
        assert report.listed >= ARTICLES + len(acknowledged)
    finally:
        mirror.proc.stop()
    assert "Traceback" not in mirror.proc.log(), mirror.proc.log()[-4000:]


@needs_wrk
def test_wrk_counts_errors() -> None:
    """The load generator itself: an answer >= 400 is an error, a refused connection is an error."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status = 200 if self.path == "/ok" else 404
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        good = Wrk("ok", base, ["/ok"], connections=2, seconds=1).result()
        bad = Wrk("404", base, ["/ok", "/missing"], connections=2, seconds=1).result()
    finally:
        server.shutdown()
        server.server_close()
    assert good.requests > 0 and good.error_count == 0, good.line()
    assert bad.errors["status"] > 0, bad.line()
    with pytest.raises(RuntimeError, match="unable to connect"):  # wrk refuses to start against nothing
        Wrk("refused", f"http://127.0.0.1:{free_port()}", ["/"], connections=2, seconds=1).result()
