"""``tamizdat share`` and ``tamizdat fetch``: share links and QR codes, and fetching what a link names.

``fetch`` tries the link's own site, then each mirror in its ``m=`` list
(bounded client: size cap, timeouts, no off-host redirects), verifies the file
against the link's root key id (or ``--root-key``), shows the publisher's
signed notice and asks before the file gets its final, neutral name
``<bundle id>.zip``. Until then it sits in a hidden ``.part`` file that is
deleted on refusal or failure.

When the publisher keeps a log (the verified root has a ``tlog`` section),
``fetch`` also asks the same mirror for ``bundles/<bundle id>.tlog-proof``,
checks it (:func:`tamizdat.bundles.tlog.reader.check_log_proof`) and saves it
beside the file as ``<bundle id>.tlog-proof``, where ``tamizdat verify`` finds
it. A missing proof is not an error; a bad one is discarded with a warning.

Before the proof, ``fetch`` asks the same mirror for the roots after the
bundle's newest (``roots/<N+1>.json`` ... until a 404, at most
:data:`MAX_NEW_ROOTS`), verifies them joined to the bundle's chain from the
pinned root key id and, if they verify, checks the file again and the proof
against the newest one: a log key added or a signing key revoked later reaches
the reader. Roots that do not verify are ignored with a warning.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tamizdat.bundles.limits import DEFAULT_LIMITS
from tamizdat.bundles.tlog.proof_file import PROOF_EXTENSION
from tamizdat.bundles.tlog.reader import (
    MAX_PROOF_BYTES,
    NO_LOG,
    NO_PROOF,
    LogProofError,
    LogVerdict,
    check_log_proof,
    log_trust,
)
from tamizdat.bundles.verify import VerifiedBundle, check_root_keyid, verify_bundle
from tamizdat.clikit import emit, guarded, json_option
from tamizdat.errors import NetworkError, RejectedError, TamizdatError, UsageError
from tamizdat.fsutil import atomic_write
from tamizdat.keys.root import MAX_ROOT_BYTES, verify_root_chain

from . import i18n, links, qr

if TYPE_CHECKING:
    from tamizdat.server.httpclient import BoundedClient

MAX_NEW_ROOTS = 64  # root versions fetched beyond the bundle's newest (a root change is rare)


def _lang(option: str | None) -> str:
    if option:
        if option not in i18n.LANGS:
            raise click.BadParameter(f"one of {', '.join(i18n.LANGS)}", param_hint="--lang")
        return option
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        for part in value.split(":"):
            base = part.split("_")[0].split(".")[0].lower()
            if base in i18n.LANGS:
                return base
    return i18n.DEFAULT


def _keyid(value: str, hint: str) -> str:
    try:
        return check_root_keyid(value)
    except TamizdatError as exc:
        raise click.BadParameter(exc.message, param_hint=hint) from exc


@click.command("share")
@click.argument("bundle_id")
@click.option(
    "--mirror",
    "mirrors",
    multiple=True,
    required=True,
    metavar="URL",
    help="A site that serves the file; the first one opens the link, the others are fallbacks.",
)
@click.option("--root-key", "root_key", required=True, metavar="ID", help="The publisher's root key id (64 hex).")
@click.option("--png", "png", type=click.Path(dir_okay=False, path_type=Path), help="Write the QR code as PNG.")
@click.option("--svg", "svg", type=click.Path(dir_okay=False, path_type=Path), help="Write the QR code as SVG.")
@click.option("--terminal", is_flag=True, help="Draw the QR code in the terminal.")
@json_option
@guarded
def share_cmd(
    bundle_id: str,
    mirrors: tuple[str, ...],
    root_key: str,
    png: Path | None,
    svg: Path | None,
    terminal: bool,
    as_json: bool,
) -> None:
    """Make the share link (and QR code) for a bundle.

    The link is https://<first mirror>/b/<bundle id>#k=<root key id>&m=<other mirrors>.
    """
    if sum([png is not None, svg is not None, terminal]) > 1:
        raise click.UsageError("choose one of --png, --svg and --terminal")
    if not links.HEX64.match(bundle_id):
        raise click.BadParameter("a bundle id is 64 lowercase hex digits", param_hint="BUNDLE_ID")
    key = _keyid(root_key, "--root-key")
    try:
        link = links.build_link(mirrors[0], bundle_id, key, list(mirrors[1:]))
    except TamizdatError as exc:
        raise click.BadParameter(exc.message, param_hint="--mirror") from exc
    text = str(link)
    code = qr.make(text)
    if png is not None:
        atomic_write(png, code.png())
    if svg is not None:
        atomic_write(svg, ('<?xml version="1.0" encoding="UTF-8"?>\n' + str(code.svg()) + "\n").encode())
    data = {"ok": True, "link": text, "bytes": len(text.encode()), "level": code.level, "version": code.version}
    lines = [text]
    if terminal and not as_json:
        lines = [code.text(), "", text]
    emit(as_json, data, "\n".join(lines))


@dataclass(frozen=True)
class ProofOutcome:
    """What became of the bundle's log proof: checked bytes to save, or why there are none."""

    data: bytes | None = None
    verdict: LogVerdict | None = None
    status: str = NO_LOG  # "logged", "no-log", "no-proof", "unreachable" or a failure code of the check
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"status": self.status}
        if self.verdict is not None:
            out.update(self.verdict.to_json())
        elif self.detail:
            out["detail"] = self.detail
        return out


async def _fetch_proof(client: BoundedClient, base: str, vb: VerifiedBundle) -> ProofOutcome:
    """The mirror's ``bundles/<id>.tlog-proof``, checked; never raises for a missing or bad proof."""
    now = int(time.time())
    try:
        log_trust(vb.root)
    except LogProofError as err:
        return ProofOutcome(status=err.code)  # the publisher keeps no (usable) log: do not even ask
    url = f"{base}/bundles/{vb.bundle_id}{PROOF_EXTENSION}"
    try:
        data = await client.fetch(url, max_bytes=MAX_PROOF_BYTES)
    except (NetworkError, RejectedError) as exc:
        if exc.code == "http-404":
            return ProofOutcome(status=NO_PROOF)
        return ProofOutcome(status="unreachable", detail=exc.code)
    try:
        verdict = await asyncio.to_thread(check_log_proof, vb.bundle_id, data, vb.root, now=now)
    except LogProofError as err:
        return ProofOutcome(status=err.code, detail=f"{err.reason}: {err.message}")
    return ProofOutcome(data, verdict, "logged")


@dataclass(frozen=True)
class RootsOutcome:
    """What the mirror's ``roots/<N>.json`` gave: a newer verified chain, nothing newer, or why it was ignored."""

    status: str  # "newer", "current", "ignored" (did not verify) or "unreachable"
    version: int  # the newest root version the file and its proof were checked against
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"status": self.status, "version": self.version}
        if self.detail:
            out["detail"] = self.detail
        return out


async def _newer_roots(
    client: BoundedClient, base: str, vb: VerifiedBundle, keyid: str
) -> tuple[RootsOutcome, bytes | None]:
    """The mirror's roots after the bundle's newest, joined to the bundle's chain and verified from ``keyid``.

    Returns the outcome and the newest root envelope when the mirror knows a
    newer root that verifies (None otherwise: the bundle's own chain is used).
    """
    carried = list(vb.chain.envelopes)
    have = vb.root.version
    newer: list[bytes] = []
    for version in range(have + 1, have + 1 + MAX_NEW_ROOTS):
        try:
            newer.append(await client.fetch(f"{base}/roots/{version}.json", max_bytes=MAX_ROOT_BYTES))
        except NetworkError as exc:
            if exc.code == "http-404":
                break
            return RootsOutcome("unreachable", have, exc.code), None
        except RejectedError as exc:  # e.g. over the size cap
            return RootsOutcome("ignored", have, f"{exc.code}: {exc.message}"), None
    if not newer:
        return RootsOutcome("current", have), None
    try:
        chain = await asyncio.to_thread(verify_root_chain, [*carried, *newer], pinned_keyid=keyid)
    except TamizdatError as exc:
        return RootsOutcome("ignored", have, f"{exc.code}: {exc.message}"), None
    return RootsOutcome("newer", chain.newest.version), chain.envelopes[-1]


async def _download(
    link: links.ShareLink, keyid: str, part: Path
) -> tuple[str, VerifiedBundle, list[str], ProofOutcome, RootsOutcome]:
    from tamizdat.server.httpclient import BoundedClient, ClientConfig

    tried: list[str] = []
    config = ClientConfig(connect_timeout=10.0, read_timeout=30.0, total_timeout=600.0)
    async with BoundedClient(config) as client:
        for base in link.candidates:
            url = f"{base}/bundles/{link.bundle_id}.zip"
            try:
                await client.fetch_to_file(url, part, max_bytes=DEFAULT_LIMITS.max_bundle_bytes)
                vb = await asyncio.to_thread(verify_bundle, part, root_keyid=keyid)
                if vb.bundle_id != link.bundle_id:
                    raise RejectedError("the mirror sent another file than the link names", code="wrong-id")
                roots, newest = await _newer_roots(client, base, vb, keyid)
                if newest is not None:  # a revoked signing key or a new log key reaches the reader here
                    vb = await asyncio.to_thread(verify_bundle, part, trusted_root=newest)
            except (NetworkError, RejectedError) as exc:
                tried.append(f"{base}: {exc.code}")
                part.unlink(missing_ok=True)
                continue
            return base, vb, tried, await _fetch_proof(client, base, vb), roots
    raise NetworkError("no mirror in the link gave a file that verifies (" + "; ".join(tried) + ")", code="no-mirror")


def proof_text(outcome: ProofOutcome, lang: str) -> str | None:
    """What fetch says about the log proof (None when the publisher keeps no log)."""
    _ = i18n.translations(lang).gettext
    v = outcome.verdict
    if v is not None:
        if v.as_of is None:
            return _("The file is in the publisher’s log as entry %(index)s of %(size)s.") % {
                "index": v.index,
                "size": v.size,
            }
        return _(
            "The file is in the publisher’s log as entry %(index)s of %(size)s, confirmed by %(witnesses)s "
            "as of %(time)s."
        ) % {
            "index": v.index,
            "size": v.size,
            "witnesses": ", ".join(v.witness_names()),
            "time": i18n.format_datetime(dt.datetime.fromtimestamp(v.as_of, dt.UTC), lang),
        }
    if outcome.status == NO_LOG:
        return None
    if outcome.status in (NO_PROOF, "unreachable"):
        return _("This mirror has no proof that the file is in the publisher’s log. That is not an error.")
    return _(
        "Warning: this mirror’s proof that the file is in the publisher’s log is not valid (%(code)s). "
        "It was not saved."
    ) % {"code": outcome.status}


def notice_text(vb: VerifiedBundle, lang: str, mirror: str) -> str:
    """What fetch shows before it asks: our words and the publisher's signed notices."""
    _ = i18n.translations(lang).gettext
    m = vb.manifest
    out = [_("Before you save this file"), ""]
    out.append(_("The file was downloaded and checked. It is not saved yet: if you answer no, it is deleted now."))
    out.append("")
    out.append("== " + _("The publisher’s notice") + " ==")
    date = i18n.format_date(m.created, lang)
    if not m.notices:
        out.append(_("The publisher attached no notice to this file."))
    for n in m.notices:
        out.append(
            _("Signed by %(publisher)s on %(date)s. Shown exactly as the publisher wrote it.")
            % {"publisher": m.publisher, "date": date}
        )
        texts = [(lang, n.text[lang])] if lang in n.text else sorted(n.text.items())
        for tl, text in texts:
            out.append(f"[{tl}] {text}")
        if "*" in n.regions or not n.regions:
            out.append(_("The publisher says this notice is for readers everywhere."))
        else:
            regions = i18n.region_list(list(n.regions), lang)
            out.append(_("The publisher says this notice is for people in: %(regions)s.") % {"regions": regions})
        out.append("")
    out.append(
        _(
            "Saving puts a copy of this file on your device. You can read the articles on a mirror’s "
            "pages instead, without saving."
        )
    )
    out.append(
        _(
            "A saved file stays on your device until you delete it. Anyone who checks the device can "
            "find it. Your network could see which mirror you used: %(mirror)s."
        )
        % {"mirror": mirror}
    )
    return "\n".join(out)


@click.command("fetch")
@click.argument("link")
@click.option(
    "-o",
    "--output-dir",
    "out_dir",
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to save <bundle id>.zip in (default: here).",
)
@click.option(
    "--root-key",
    "root_key",
    default=None,
    metavar="ID",
    help="The root key id you pinned; the link's k= must match it.",
)
@click.option("--yes", is_flag=True, help="Save without asking (for scripts); the notice is still shown.")
@click.option("--lang", default=None, metavar="LANG", help="Language of the notice: en, ru, uk or fa.")
@json_option
@guarded
def fetch_cmd(link: str, out_dir: Path, root_key: str | None, yes: bool, lang: str | None, as_json: bool) -> None:
    """Fetch the bundle a share link names, verify it, show its notice, then save it as <bundle id>.zip."""
    ui = _lang(lang)
    _ = i18n.translations(ui).gettext
    share = links.parse_link(link)
    keyid = share.root_keyid
    if root_key is not None:
        pinned = _keyid(root_key, "--root-key")
        if pinned != share.root_keyid:
            raise RejectedError("the link names another root key than the one you pinned", code="key-mismatch")
        keyid = pinned
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{share.bundle_id}.zip"
    if final.exists():
        raise UsageError(f"{final.name} already exists in {out_dir}", code="exists")
    part = out_dir / f".{share.bundle_id}.part"
    try:
        mirror, vb, tried, proof, roots = asyncio.run(_download(share, keyid, part))
        if roots.status == "ignored":
            click.echo(
                _("Warning: this mirror’s copy of the publisher’s keys is not valid (%(code)s). It was ignored.")
                % {"code": roots.detail.split(":", 1)[0]},
                err=True,
            )
        click.echo(notice_text(vb, ui, mirror), err=True)
        said = proof_text(proof, ui)
        if said:
            click.echo("\n" + said, err=True)
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("nothing saved: no terminal to ask; run again with --yes to save", code="no-confirm")
            if not click.confirm(_("Save the file?"), default=False, err=True):
                part.unlink(missing_ok=True)
                raise RejectedError(_("Not saved. The downloaded copy was deleted."), code="declined")
        os.replace(part, final)
        if proof.data is not None:
            atomic_write(out_dir / f"{share.bundle_id}{PROOF_EXTENSION}", proof.data)
    finally:
        part.unlink(missing_ok=True)
    data = {
        "ok": True,
        "bundle_id": vb.bundle_id,
        "path": str(final),
        "mirror": mirror,
        "failed": tried,
        "size": vb.size,
        "log": proof.to_json(),
        "roots": roots.to_json(),
    }
    if proof.data is not None:
        data["proof_path"] = str(out_dir / f"{share.bundle_id}{PROOF_EXTENSION}")
    emit(as_json, data, _("Saved: %(path)s") % {"path": str(final)})


def register(group: click.Group) -> None:
    """Add ``share`` and ``fetch`` to the ``tamizdat`` command."""
    group.add_command(share_cmd)
    group.add_command(fetch_cmd)
