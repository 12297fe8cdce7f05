"""``tamizdat keys ...``: create, rotate and revoke the publisher's keys."""

from __future__ import annotations

from pathlib import Path

import click

from tamizdat.clikit import emit, guarded, json_option, read_passphrase
from tamizdat.errors import UsageError

from . import timefmt
from .keydir import KeyDir
from .root import MAX_LOG_MAX_AGE, MAX_LOG_POLICY_BYTES, MIN_LOG_MAX_AGE, PURPOSES, Root

PASS_ENV = "TAMIZDAT_ROOT_PASSPHRASE"

dir_option = click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The key directory.",
)
private_option = click.option(
    "--root-private",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the root private keys are (default: DIR/root-private).",
)
pass_option = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help=f"File holding the root key passphrase (or set {PASS_ENV}; prompted on a terminal).",
)


def _summary(root: Root, keydir: KeyDir) -> dict[str, object]:
    return {
        "ok": True,
        "publisher": root.publisher,
        "root_keyid": keydir.root_keyid(),
        "root_version": root.version,
        "root_keys": sorted(root.root_keys),
        "threshold": root.threshold,
        "expires": timefmt.format(root.expires),
        "signing_keys": [
            {**e.to_json(), "revoked": e.keyid in root.revoked} for _, e in sorted(root.signing_keys.items())
        ],
        "tlog": None if root.tlog is None else {**root.tlog.to_json(), "log_keys": sorted(root.log_keys())},
    }


def _check_log_trust(root: Root) -> None:
    """Parse the root's log policy as readers will (before anything is signed)."""
    # The one upward import of keys/: the policy grammar lives in bundles/tlog, and
    # only this command needs it.
    from tamizdat.bundles.tlog.trust import LogTrust

    LogTrust.from_root(root)


@click.group("keys")
def keys_group() -> None:
    """Publisher keys and the signed trust root (root.json)."""


@keys_group.command("init")
@dir_option
@click.option("--publisher", required=True, help="Publisher name written into root.json.")
@click.option("--encrypt/--no-encrypt", default=False, help="Encrypt the root private key with a passphrase.")
@click.option("--root-keys", type=click.IntRange(1, 16), default=1, show_default=True, help="Number of root keys.")
@click.option("--threshold", type=click.IntRange(1, 16), default=1, show_default=True, help="Root signatures needed.")
@click.option(
    "--log/--no-log",
    default=True,
    show_default=True,
    help="Also make a transparency-log key and a tlog section (policy: quorum none).",
)
@pass_option
@json_option
@guarded
def init_cmd(
    directory: Path,
    publisher: str,
    encrypt: bool,
    root_keys: int,
    threshold: int,
    log: bool,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Make root, signing and log keys and a signed root.json; print the root key id."""
    passphrase = None
    if encrypt:
        passphrase = read_passphrase(passphrase_file, PASS_ENV, prompt="Root key passphrase", confirm=True)
        if not passphrase:
            raise click.UsageError("--encrypt needs a passphrase (file, environment or terminal)")
    keydir = KeyDir(directory)
    root = keydir.init(publisher, passphrase=passphrase, root_keys=root_keys, threshold=threshold, log=log)
    data = _summary(root, keydir)
    emit(
        as_json,
        data,
        (
            f"root key id: {data['root_keyid']}\n"
            f"Keys written to {directory}. Move {directory / 'root-private'} offline now;\n"
            "readers and mirrors pin the root key id above."
        ),
    )


@keys_group.command("show")
@dir_option
@json_option
@guarded
def show_cmd(directory: Path, as_json: bool) -> None:
    """Show the current root: version, keys, windows, revocations."""
    keydir = KeyDir(directory)
    root = keydir.chain().newest
    data = _summary(root, keydir)
    lines = [
        f"publisher:   {root.publisher}",
        f"root key id: {data['root_keyid']}",
        f"root:        version {root.version}, expires {data['expires']}",
    ]
    for e in sorted(root.signing_keys.values(), key=lambda e: e.not_before):
        state = "revoked" if e.keyid in root.revoked else "active"
        lines.append(
            f"signing key: {e.keyid} {','.join(e.purposes)} "
            f"{timefmt.format(e.not_before)}..{timefmt.format(e.not_after)} {state}"
        )
    if root.tlog is None:
        lines.append("log:         none (this publisher keeps no transparency log)")
    else:
        lines.append(f"log origin:  {root.tlog.origin}")
        lines.append(
            f"log keys:    {', '.join(sorted(root.log_keys())) or 'none (run keys rotate-signing --purpose log)'}"
        )
        lines.append(f"log max age: {root.tlog.max_age} s")
        lines.append("log policy:")
        lines.extend(f"  {line}" for line in root.tlog.policy.rstrip("\n").split("\n"))
    emit(as_json, data, "\n".join(lines))


@keys_group.command("rotate-signing")
@dir_option
@private_option
@pass_option
@click.option(
    "--purpose",
    "purposes",
    type=click.Choice(PURPOSES),
    multiple=True,
    help="What the new key signs (repeatable; default: bundle and index).",
)
@json_option
@guarded
def rotate_signing_cmd(
    directory: Path,
    root_private: Path | None,
    passphrase_file: Path | None,
    purposes: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add a new online key; current keys with a shared purpose stop signing now."""
    keydir = KeyDir(directory, root_private)
    chosen = tuple(sorted(set(purposes))) or ("bundle", "index")
    root, key = keydir.rotate_signing(
        passphrase=read_passphrase(passphrase_file, PASS_ENV, prompt="Root key passphrase"), purposes=chosen
    )
    emit(
        as_json,
        {**_summary(root, keydir), "new_keyid": key.keyid},
        f"root version {root.version}: new {'+'.join(chosen)} key {key.keyid}",
    )


@keys_group.command("log-policy")
@dir_option
@click.option(
    "--policy",
    "policy_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="tlog-policy text: witness, group and quorum lines (no log lines).",
)
@click.option(
    "--max-age",
    type=click.IntRange(MIN_LOG_MAX_AGE, MAX_LOG_MAX_AGE),
    default=None,
    help="Seconds a cosignature keeps a checkpoint fresh (default: keep the current value, else 7 days).",
)
@private_option
@pass_option
@json_option
@guarded
def log_policy_cmd(
    directory: Path,
    policy_file: Path,
    max_age: int | None,
    root_private: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Set the log's witness policy in a new root version (checked as readers parse it)."""
    data = policy_file.read_bytes()
    if len(data) > MAX_LOG_POLICY_BYTES:
        raise UsageError(f"{policy_file.name} is larger than 64 KiB", code="usage")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise UsageError(f"{policy_file.name} is not ASCII text", code="usage") from None
    keydir = KeyDir(directory, root_private)
    root = keydir.set_log_policy(
        text,
        max_age,
        passphrase=read_passphrase(passphrase_file, PASS_ENV, prompt="Root key passphrase"),
        check=_check_log_trust,
    )
    assert root.tlog is not None
    emit(
        as_json,
        _summary(root, keydir),
        f"root version {root.version}: log policy set for {root.tlog.origin} (max age {root.tlog.max_age} s)",
    )


@keys_group.command("revoke")
@click.argument("keyid")
@dir_option
@click.option("--reason", required=True, help="Why the key is revoked (published in root.json).")
@private_option
@pass_option
@json_option
@guarded
def revoke_cmd(
    keyid: str,
    directory: Path,
    reason: str,
    root_private: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Revoke a signing key: everything it signed stops verifying."""
    keydir = KeyDir(directory, root_private)
    before = keydir.chain().newest
    old_purposes = {p: set(before.signing_keys_for(p)) for p in ("bundle", "log")}
    root = keydir.revoke(
        keyid, reason, passphrase=read_passphrase(passphrase_file, PASS_ENV, prompt="Root key passphrase")
    )
    note = ""
    for purpose, hint in (("bundle", ""), ("log", " --purpose log")):
        if keyid in old_purposes.get(purpose, ()) and not root.signing_keys_for(purpose):
            note += f"\nno {purpose} key is left: run `tamizdat keys rotate-signing{hint}`"
    emit(as_json, _summary(root, keydir), f"root version {root.version}: revoked {keyid}{note}")


@keys_group.command("rotate-root")
@dir_option
@private_option
@pass_option
@click.option("--encrypt/--no-encrypt", default=False, help="Encrypt the new root key (asks for a new passphrase).")
@click.option("--new-passphrase-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None)
@json_option
@guarded
def rotate_root_cmd(
    directory: Path,
    root_private: Path | None,
    passphrase_file: Path | None,
    encrypt: bool,
    new_passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Replace the root key(s): the new root is signed by the old and the new keys."""
    keydir = KeyDir(directory, root_private)
    old_pass = read_passphrase(passphrase_file, PASS_ENV, prompt="Current root key passphrase")
    new_pass = None
    if encrypt:
        new_pass = read_passphrase(
            new_passphrase_file, "TAMIZDAT_NEW_ROOT_PASSPHRASE", prompt="New root key passphrase", confirm=True
        )
    root = keydir.rotate_root(passphrase=old_pass, new_passphrase=new_pass)
    emit(
        as_json,
        _summary(root, keydir),
        f"root version {root.version}: new root key(s) {', '.join(sorted(root.root_keys))}\n"
        "readers who pinned the first root key id keep working: the chain links them.",
    )


def register(group: click.Group) -> None:
    group.add_command(keys_group)
