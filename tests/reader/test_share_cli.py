"""Share links, QR codes (decoded with zxing-cpp) and the `tamizdat share` / `tamizdat fetch` commands."""

from __future__ import annotations

import html
import io
import json
import re
import threading
from pathlib import Path
from typing import Any

import click
import pytest
import reader_http as rhttp
import reader_sample as sample_mod
import zxingcpp
from click.testing import CliRunner
from PIL import Image
from reader_sample import Site

from tamizdat.errors import UsageError
from tamizdat.server.reader import links, qr
from tamizdat.server.reader.cli import register


def cli() -> click.Group:
    @click.group()
    def group() -> None:
        pass

    register(group)
    return group


def fetch(args: list[str]) -> Any:
    """Run ``fetch`` in its own thread: Playwright's sync API may own this thread's event loop."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(CliRunner().invoke(cli(), ["fetch", *args])))
    worker.start()
    worker.join(timeout=300)
    assert out, "fetch did not finish"
    return out[0]


def decode_png(data: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert len(found) == 1
    return str(found[0].text)


def test_link_format_round_trips() -> None:
    bid, key = "a" * 64, "b" * 64
    link = links.build_link(
        "https://Mirror.Example.org:443/",
        bid,
        key,
        ["https://m2.example.net", "http://127.0.0.1:8081", "https://mirror.example.org"],
    )
    text = str(link)
    assert text == f"https://mirror.example.org/b/{bid}#k={key}&m=m2.example.net,http://127.0.0.1:8081"
    back = links.parse_link(text)
    assert back == link
    assert back.candidates == ["https://mirror.example.org", "https://m2.example.net", "http://127.0.0.1:8081"]
    for bad in (
        "https://x/b/" + "a" * 63 + "#k=" + key,
        f"https://x/b/{bid}",
        f"ftp://x/b/{bid}#k={key}",
        f"https://x/b/{bid}#k={key}&k={key}",
        f"https://x/b/{bid}?q=1#k={key}",
    ):
        with pytest.raises(UsageError):
            links.parse_link(bad)


@pytest.mark.parametrize("n_mirrors", [0, 1, 2, 3])
def test_qr_level_and_decoding(n_mirrors: int) -> None:
    mirrors = [f"https://mirror-{i}.example.net" for i in range(n_mirrors)]
    text = str(links.build_link("https://news-mirror.example.org", "c" * 64, "d" * 64, mirrors))
    code = qr.make(text)
    assert code.level in ("H", "Q", "M")
    if len(text.encode()) <= qr.CAPACITY_V10["M"]:
        assert code.version <= qr.MAX_VERSION and code.level == "M"
    assert decode_png(code.png()) == text
    assert "<svg" in code.svg("label") and "style=" not in code.svg("label")


def test_web_share_qr_decodes_to_exactly_the_link(site: Site) -> None:
    i = site.ids["en"]
    page = rhttp.post(site.a.url + f"/share/{i}/code", {"confirm": "share"}).text
    link = html.unescape(re.search(r'<bdi dir="ltr" class="id">(.*?)</bdi>', page).group(1))
    assert link.startswith(f"{site.a.url}/b/{i}#k={site.keyid}&m=")
    assert links.parse_link(link).mirrors == (f"http://localhost:{site.a.port}", f"http://localhost:{site.b.port}")
    png = rhttp.post(site.a.url + f"/share/{i}/code.png", {"confirm": "share"})
    assert png.header("Content-Disposition") == f'attachment; filename="{i}.png"'
    assert decode_png(png.body) == link
    # No title, no publisher: only the mirror, the ids and the fallbacks.
    assert sample_mod.HEADLINES["en"].lower() not in link.lower() and "obscura" not in link.lower()


def test_share_command(tmp_path: Path, site: Site) -> None:
    bid = site.ids["ru"]
    args = [
        "share",
        bid,
        "--mirror",
        "https://one.example.org",
        "--mirror",
        "https://two.example.net",
        "--root-key",
        site.keyid,
    ]
    res = CliRunner().invoke(cli(), [*args, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["link"] == f"https://one.example.org/b/{bid}#k={site.keyid}&m=two.example.net"
    assert doc["level"] == "M"
    res = CliRunner().invoke(cli(), [*args, "--png", str(tmp_path / "q.png")])
    assert res.exit_code == 0 and decode_png((tmp_path / "q.png").read_bytes()) == doc["link"]
    res = CliRunner().invoke(cli(), [*args, "--svg", str(tmp_path / "q.svg")])
    assert res.exit_code == 0 and (tmp_path / "q.svg").read_text().startswith("<?xml")
    res = CliRunner().invoke(cli(), [*args, "--terminal"])
    assert res.exit_code == 0 and "\u2588" in res.output and doc["link"] in res.output
    res = CliRunner().invoke(cli(), [*args, "--png", "a.png", "--terminal"])
    assert res.exit_code == 2
    res = CliRunner().invoke(cli(), ["share", bid, "--mirror", "https://x", "--root-key", "nothex"])
    assert res.exit_code == 2


def test_fetch_falls_back_to_the_next_mirror(site: Site, tmp_path: Path) -> None:
    """A third node makes the link, goes down; fetch then gets the file from the link's next mirror."""
    node = sample_mod.Server(sample_mod.make_app(site.sample.data)).start()
    i = site.ids["en"]
    try:
        png = rhttp.post(node.url + f"/share/{i}/code.png", {"confirm": "share"}).body
    finally:
        node.stop()
    link = decode_png(png)
    assert link.startswith(node.url + "/b/")
    out = tmp_path / "out"
    res = fetch([link, "-o", str(out), "--yes", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["mirror"] == f"http://localhost:{site.a.port}"
    assert doc["failed"] and doc["failed"][0].startswith(node.url)
    saved = out / f"{i}.zip"
    assert saved.read_bytes() == site.sample.data.bundle_path(i).read_bytes()
    assert [p.name for p in out.iterdir()] == [saved.name]
    # The notice came first, from the verified file, with our words around it.
    assert sample_mod.NOTICE_TEXT["en"] in res.stderr
    assert "Signed by " + sample_mod.PUBLISHER in res.stderr
    assert res.stderr.index(sample_mod.NOTICE_TEXT["en"]) < len(res.stderr)
    from tamizdat.bundles.cli import verify_cmd

    assert CliRunner().invoke(verify_cmd, [str(saved), "--root-key", site.keyid]).exit_code == 0


def test_fetch_needs_confirmation_and_the_right_key(site: Site, tmp_path: Path) -> None:
    i = site.ids["ru"]
    link = str(links.build_link(site.a.url, i, site.keyid, [site.b.url]))
    out = tmp_path / "o"
    res = fetch([link, "-o", str(out), "--lang", "ru"])
    assert res.exit_code == 1  # no terminal to ask, no --yes: nothing saved
    assert sample_mod.NOTICE_TEXT["ru"] in res.stderr and "Прежде чем сохранить этот файл" in res.stderr
    assert list(out.iterdir()) == []
    other = "e" * 64
    res = fetch([link, "-o", str(out), "--yes", "--root-key", other])
    assert res.exit_code == 1 and "another root key" in res.stderr and list(out.iterdir()) == []
    # A link whose key is not the publisher's: every mirror's file fails verification.
    bad = str(links.build_link(site.a.url, i, other, [site.b.url]))
    res = fetch([bad, "-o", str(out), "--yes"])
    assert res.exit_code == 1 and list(out.iterdir()) == []
    # The tampered file is refused everywhere.
    t = site.ids["tampered"]
    res = fetch([str(links.build_link(site.a.url, t, site.keyid, [site.b.url])), "-o", str(out), "--yes"])
    assert res.exit_code == 1 and list(out.iterdir()) == []
