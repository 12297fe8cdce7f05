"""`tamizdat demo`: a publisher's whole path on one machine, with sample articles.

Today it makes demo keys, builds the sample articles into a signed bundle and
verifies it as a reader would. (The origin and mirror servers join the demo as
they land.)
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import click

from tamizdat.bundles.build import build_bundle
from tamizdat.bundles.content import parse_bundle_input
from tamizdat.bundles.verify import verify_bundle
from tamizdat.clikit import emit, guarded, json_option
from tamizdat.keys.keydir import KeyDir

from .sample_image import draw_sampling_map


def prepare_sample(folder: Path) -> Path:
    """Copy the sample articles into ``folder`` with their image; return the JSON path."""
    folder.mkdir(parents=True, exist_ok=True)
    source = resources.files("tamizdat.demo").joinpath("articles.json").read_bytes()
    target = folder / "articles.json"
    target.write_bytes(source)
    draw_sampling_map(folder / "sampling.png")
    return target


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo's keys and files here (default: a temporary folder, removed at the end).",
)
@json_option
@guarded
def demo_cmd(directory: Path | None, as_json: bool) -> None:
    """Run the demo: demo keys, sample articles, a signed bundle, verified offline."""
    work = directory or Path(tempfile.mkdtemp(prefix="demo-"))
    try:
        keydir = KeyDir(work / "keys")
        if not (keydir.path / "root.json").exists():
            keydir.init("Demo Newsroom")
        source = prepare_sample(work / "sample")
        inp = parse_bundle_input(source.read_bytes(), base=source.parent)
        built = build_bundle(inp, signer=keydir.signer("bundle"), chain=keydir.chain(), out=work / "bundle.zip")
        root_id = keydir.root_keyid()
        result = verify_bundle(built.path, root_keyid=root_id)
        data = {**result.summary(), "root_keyid": root_id, "workdir": str(work) if directory else None}
        lines = [
            f"publisher root key id: {root_id}",
            f"built and signed:      {built.bundle_id}.zip ({built.size} bytes, {len(inp.articles)} articles)",
            f"verified offline:      VALID, signed by {result.manifest.publisher}",
        ]
        lines += [f"  [{a.lang}] {a.title}" for a in result.manifest.articles]
        if directory:
            lines.append(f"files kept in {work}; check again with: tamizdat verify {built.path} --root-key {root_id}")
        emit(as_json, json.loads(json.dumps(data)), "\n".join(lines))
    finally:
        if directory is None:
            shutil.rmtree(work, ignore_errors=True)
