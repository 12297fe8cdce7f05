"""``tamizdat bundle build|inspect`` and ``tamizdat verify``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from tamizdat.clikit import emit, guarded, json_option
from tamizdat.keys import timefmt
from tamizdat.keys.keydir import KeyDir

from .build import build_bundle
from .content import parse_bundle_input
from .inspect import inspect_bundle
from .logproof import check_log
from .tlog.reader import LogProofError
from .verify import check_root_keyid, verify_bundle


@click.group("bundle")
def bundle_group() -> None:
    """Build and inspect signed bundles."""


@bundle_group.command("build")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--keys",
    "keys_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Key directory (its online signing key signs the bundle).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the bundle (.zip).",
)
@click.option(
    "--created",
    default=None,
    metavar="TIME",
    help="Creation time YYYY-MM-DDTHH:MM:SSZ (default: newest article time; reproducible).",
)
@json_option
@guarded
def build_cmd(source: Path, keys_dir: Path, output: Path, created: str | None, as_json: bool) -> None:
    """Build a signed bundle from an articles JSON file."""
    inp = parse_bundle_input(source.read_bytes(), base=source.parent)
    keydir = KeyDir(keys_dir)
    when = timefmt.parse(created, field="--created") if created else None
    chain = keydir.chain()
    entry_time = when or None
    signer = keydir.signer("bundle", at=entry_time or timefmt.now())
    built = build_bundle(inp, signer=signer, chain=chain, out=output, created=when)
    data = {
        "ok": True,
        "bundle_id": built.bundle_id,
        "path": str(output),
        "size": built.size,
        "sha256": built.sha256,
        "created": timefmt.format(built.manifest.created),
        "articles": len(built.manifest.articles),
        "signing_keyid": signer.keyid,
    }
    emit(as_json, data, f"built {output} ({built.size} bytes)\nbundle id: {built.bundle_id}")


@bundle_group.command("inspect")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@guarded
def inspect_cmd(bundle: Path, as_json: bool) -> None:
    """List a bundle's entries and unverified manifest (trusts nothing)."""
    data = inspect_bundle(bundle)
    lines = ["UNVERIFIED: nothing below has been checked (use `tamizdat verify`)."]
    for e in data["entries"]:
        lines.append(f"{e['size']:>10}  {e['method']:<8} {'ENCRYPTED ' if e['encrypted'] else ''}{e['name']}")
    m = data.get("manifest")
    if isinstance(m, dict):
        lines.append(f"claims bundle id {data.get('bundle_id')} by {m.get('publisher')!r}, created {m.get('created')}")
        for a in m.get("articles", []) if isinstance(m.get("articles"), list) else []:
            if isinstance(a, dict):
                lines.append(f"  article {a.get('id')} v{a.get('version')} [{a.get('lang')}] {a.get('title')}")
    elif data.get("manifest_error"):
        lines.append(f"manifest unreadable: {data['manifest_error']}")
    emit(as_json, data, "\n".join(lines))


@click.command("verify")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root-key", "root_key", default=None, metavar="ID", help="The publisher's root key id (64 hex).")
@click.option(
    "--root",
    "root_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trust this root.json instead (it may be newer than the bundle's; its revocations apply).",
)
@click.option(
    "--proof",
    "proof_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The bundle's .tlog-proof (default: FILE.tlog-proof, then <bundle id>.tlog-proof beside FILE).",
)
@click.option(
    "--require-log",
    is_flag=True,
    help="Fail (exit 1) unless a proof shows the bundle in the publisher's log, witnessed by the policy's quorum.",
)
@json_option
@guarded
def verify_cmd(
    bundle: Path,
    root_key: str | None,
    root_file: Path | None,
    proof_file: Path | None,
    require_log: bool,
    as_json: bool,
) -> None:
    """Verify a bundle offline against the publisher's root key id (and its log proof, when there is one)."""
    if (root_key is None) == (root_file is None):
        raise click.UsageError("give exactly one of --root-key and --root")
    if root_key is not None:
        try:
            root_key = check_root_keyid(root_key)
        except Exception as exc:
            raise click.BadParameter(str(exc), param_hint="--root-key") from exc
    result = verify_bundle(bundle, root_keyid=root_key, trusted_root=root_file.read_bytes() if root_file else None)
    log = check_log(result, bundle, proof_file, now=int(time.time()))
    if require_log and log.error is not None:
        err = log.error
        raise LogProofError(f"log proof required: {err.code}: {err.message}", code=err.code, reason=err.reason)
    data = result.summary()
    data["log"] = log.to_json()
    lines = [
        f"VALID: signed by {result.manifest.publisher}",
        f"bundle id:   {result.bundle_id}",
        f"created:     {data['created']}",
        f"signing key: {result.signing_keyid} (root version {result.root.version})",
    ]
    lines += [f"article:     {a.id} v{a.version} [{a.lang}] {a.title}" for a in result.manifest.articles]
    lines.append(f"log:         {log.text()}")
    emit(as_json, data, "\n".join(lines))


def register(group: click.Group) -> None:
    from .verifier import register as register_verifier

    group.add_command(bundle_group)
    group.add_command(verify_cmd)
    register_verifier(group)
