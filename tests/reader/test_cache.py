"""What the reader pages cache, and that the caches follow the files.

The home page's list is computed once per snapshot and per state of
``bundles/``: a repeated request opens no bundle file. A changed index is
loaded in a thread while other requests keep the previous snapshot; the
request that noticed the change waits for the new one, so a client never sees
an older state after a newer one.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import reader_http as rhttp
import reader_sample as sample_mod

from tamizdat.server.datadir import DataDir
from tamizdat.server.reader import store as store_mod

HEADLINE = sample_mod.HEADLINES["en"]


@pytest.fixture(scope="module")
def sample_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cache-sample")
    sample_mod.build_sample(base)
    return base


@pytest.fixture
def data(sample_base: Path, tmp_path: Path) -> DataDir:
    """A private copy of the sample tree (tests change files in it)."""
    shutil.copytree(sample_base / "data", tmp_path / "data")
    return DataDir(tmp_path / "data")


@pytest.fixture
def url(data: DataDir) -> Iterator[str]:
    server = sample_mod.Server(sample_mod.make_app(data)).start()
    try:
        yield server.url
    finally:
        server.stop()


def home(url: str, query: str = "") -> str:
    reply = rhttp.get(url + "/" + query)
    assert reply.status == 200
    return reply.text


def count_calls(monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    for name in names:
        real: Callable[..., Any] = getattr(os, name)

        def counting(*args: Any, _real: Callable[..., Any] = real, _name: str = name, **kw: Any) -> Any:
            counts[_name] += 1
            return _real(*args, **kw)

        monkeypatch.setattr(os, name, counting)
    return counts


def english_bundles(url: str, data: DataDir) -> list[str]:
    ids = [p.stem for p in data.bundles.glob("*.zip")]
    return [bid for bid in ids if HEADLINE in rhttp.get(f"{url}/v/{bid}/1").text]


def replace_file(path: Path, body: bytes) -> None:
    """Rename a new file over ``path`` (a new inode, as a sync or a round does)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(body)
    tmp.replace(path)


def test_a_repeated_home_page_opens_no_bundle(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = home(url)
    assert HEADLINE in first and home(url, "?lang=ru")
    counts = count_calls(monkeypatch, ("open", "stat", "lstat", "fstat"))
    for query in ("", "?lang=ru", "", "?lang=ru"):
        home(url, query)
    assert counts["open"] == 0 and counts["fstat"] == 0
    assert counts["stat"] + counts["lstat"] <= 4 * 3  # root.json, index.json, bundles/: three per page
    assert home(url) == first


def test_every_language_gets_its_own_formatting(url: str) -> None:
    en, ru = home(url, "?lang=en"), home(url, "?lang=ru")
    assert en != ru and '<html lang="ru"' in ru
    assert home(url, "?lang=en") == en
    plain_links = re.findall(r'href="(/v/[^"]*)"', home(url))
    ru_links = re.findall(r'href="(/v/[^"]*)"', ru)
    assert plain_links and all("?lang=" not in h for h in plain_links)
    assert ru_links and all(h.endswith("?lang=ru") for h in ru_links)


def test_a_removed_file_leaves_the_home_page_at_once(url: str, data: DataDir) -> None:
    assert HEADLINE in home(url)
    en_ids = english_bundles(url, data)
    assert en_ids
    for bid in en_ids:
        data.bundle_path(bid).unlink()
    assert HEADLINE not in home(url)


def test_a_file_replaced_by_a_tampered_copy_leaves_the_home_page(url: str, data: DataDir) -> None:
    assert HEADLINE in home(url)
    en_ids = english_bundles(url, data)
    assert en_ids
    for bid in en_ids:
        raw = bytearray(data.bundle_path(bid).read_bytes())
        raw[-100] ^= 0x01  # inside the central directory
        replace_file(data.bundle_path(bid), bytes(raw))
    assert HEADLINE not in home(url)


def test_a_changed_index_is_seen_by_the_next_request(url: str, data: DataDir) -> None:
    assert HEADLINE in home(url)
    raw = bytearray((data.public / "index.json").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    replace_file(data.public / "index.json", bytes(raw))
    page = home(url)
    assert HEADLINE not in page and "could not check its list" in page


def test_readers_keep_the_old_snapshot_while_a_new_one_loads(
    url: str, data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert HEADLINE in home(url)
    release, started = threading.Event(), threading.Event()
    real = store_mod.load_snapshot

    def slow(*args: Any) -> store_mod.Snapshot:
        started.set()
        assert release.wait(30)
        return real(*args)

    monkeypatch.setattr(store_mod, "load_snapshot", slow)
    index = data.public / "index.json"
    replace_file(index, index.read_bytes())  # same bytes, new inode: a new snapshot to load
    with ThreadPoolExecutor(1) as pool:
        noticing = pool.submit(rhttp.get, url + "/")
        assert started.wait(30)
        # Meanwhile, other readers are answered from the previous snapshot without waiting.
        for path in ("/", "/?lang=ru", "/mirrors"):
            assert rhttp.get(url + path, timeout=5).status == 200
        assert HEADLINE in home(url)
        assert not noticing.done()  # the request that noticed the change waits for the new snapshot
        release.set()
        reply = noticing.result(timeout=30)
    assert reply.status == 200 and HEADLINE in reply.text


def test_a_failed_reload_is_retried(url: str, data: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    assert HEADLINE in home(url)
    real = store_mod.load_snapshot
    calls = []

    def failing_once(*args: Any) -> store_mod.Snapshot:
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("out of memory, once")
        return real(*args)

    monkeypatch.setattr(store_mod, "load_snapshot", failing_once)
    index = data.public / "index.json"
    replace_file(index, index.read_bytes())
    assert rhttp.get(url + "/").status == 500  # the reader's own plain error page
    assert HEADLINE in home(url)
    assert len(calls) == 2


def test_readers_get_the_previous_home_list_while_a_new_one_is_computed(
    url: str, data: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert HEADLINE in home(url)
    bid = english_bundles(url, data)[0]
    release, started = threading.Event(), threading.Event()
    real = store_mod._verify_one

    def slow(*args: Any) -> store_mod.Verdict:
        started.set()
        assert release.wait(30)
        return real(*args)

    monkeypatch.setattr(store_mod, "_verify_one", slow)
    replace_file(data.bundle_path(bid), data.bundle_path(bid).read_bytes())  # a new inode: verified again
    with ThreadPoolExecutor(1) as pool:
        noticing = pool.submit(rhttp.get, url + "/")
        assert started.wait(30)
        assert HEADLINE in home(url)  # at once, from the list computed before
        assert not noticing.done()
        release.set()
        reply = noticing.result(timeout=30)
    assert reply.status == 200 and HEADLINE in reply.text
