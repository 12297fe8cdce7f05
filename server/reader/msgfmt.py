"""Compile gettext ``.po`` catalogs to ``.mo`` without third-party code.

Used by the build step (``setup.py``: every regular install ships compiled
catalogs) and, in a source checkout where no ``.mo`` was built, by
:mod:`tamizdat.server.reader.i18n` to compile in memory. A catalog with an
untranslated or fuzzy entry is refused here, so a missing string fails both
the build and the tests. Modelled on CPython's ``Tools/i18n/msgfmt.py``.
"""

from __future__ import annotations

import ast
import struct
from dataclasses import dataclass, field
from pathlib import Path


class CatalogError(ValueError):
    """A catalog that must not ship: syntax error, untranslated or fuzzy entry."""


@dataclass
class Message:
    msgid: str
    msgstr: list[str]
    msgctxt: str | None = None
    msgid_plural: str | None = None
    fuzzy: bool = False
    obsolete: bool = False
    line: int = 0

    @property
    def key(self) -> str:
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"


@dataclass
class Catalog:
    messages: list[Message] = field(default_factory=list)

    @property
    def header(self) -> str:
        for m in self.messages:
            if m.msgid == "" and m.msgctxt is None:
                return m.msgstr[0] if m.msgstr else ""
        return ""


def _unquote(text: str, path: str, line: int) -> str:
    text = text.strip()
    if not (len(text) >= 2 and text[0] == '"' and text[-1] == '"'):
        raise CatalogError(f"{path}:{line}: expected a quoted string")
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError) as exc:
        raise CatalogError(f"{path}:{line}: bad string literal") from exc
    if not isinstance(value, str):
        raise CatalogError(f"{path}:{line}: bad string literal")
    return value


def parse_po(text: str, path: str = "<po>") -> Catalog:
    """Parse a PO file (msgctxt, plurals, ``#, fuzzy`` and ``#~`` obsolete entries)."""
    catalog = Catalog()
    cur: Message | None = None
    section: str | None = None
    index = 0
    fuzzy = False

    def finish() -> None:
        nonlocal cur
        if cur is not None:
            catalog.messages.append(cur)
        cur = None

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        obsolete = False
        if line.startswith("#~"):
            obsolete = True
            line = line[2:].strip()
        elif line.startswith("#"):
            if section == "msgstr":
                finish()
                section = None
            if line.startswith("#,") and "fuzzy" in {f.strip() for f in line[2:].split(",")}:
                fuzzy = True
            continue
        if not line:
            continue
        keyword, _, rest = line.partition(" ")
        if keyword == "msgctxt" or (keyword == "msgid" and section != "msgctxt"):
            if cur is not None and section != "msgstr":
                raise CatalogError(f"{path}:{lineno}: entry without msgstr")
            finish()
            cur = Message(msgid="", msgstr=[], fuzzy=fuzzy, obsolete=obsolete, line=lineno)
            fuzzy = False
        if keyword == "msgctxt":
            assert cur is not None
            cur.msgctxt = _unquote(rest, path, lineno)
            section = "msgctxt"
        elif keyword == "msgid":
            assert cur is not None
            cur.msgid = _unquote(rest, path, lineno)
            section = "msgid"
        elif keyword == "msgid_plural":
            if cur is None:
                raise CatalogError(f"{path}:{lineno}: msgid_plural before msgid")
            cur.msgid_plural = _unquote(rest, path, lineno)
            section = "msgid_plural"
        elif keyword == "msgstr" or keyword.startswith("msgstr["):
            if cur is None:
                raise CatalogError(f"{path}:{lineno}: msgstr before msgid")
            if keyword == "msgstr":
                index = 0
            else:
                try:
                    index = int(keyword[7:-1])
                except ValueError as exc:
                    raise CatalogError(f"{path}:{lineno}: bad plural index") from exc
            while len(cur.msgstr) <= index:
                cur.msgstr.append("")
            cur.msgstr[index] = _unquote(rest, path, lineno)
            section = "msgstr"
        elif line.startswith('"'):
            if cur is None or section is None:
                raise CatalogError(f"{path}:{lineno}: string outside an entry")
            value = _unquote(line, path, lineno)
            if section == "msgctxt":
                cur.msgctxt = (cur.msgctxt or "") + value
            elif section == "msgid":
                cur.msgid += value
            elif section == "msgid_plural":
                cur.msgid_plural = (cur.msgid_plural or "") + value
            else:
                cur.msgstr[index] += value
        else:
            raise CatalogError(f"{path}:{lineno}: unexpected line")
    finish()
    return catalog


def check(catalog: Catalog, path: str = "<po>") -> list[str]:
    """Problems that must fail a build: untranslated or fuzzy entries."""
    problems = []
    for m in catalog.messages:
        if m.obsolete or (m.msgid == "" and m.msgctxt is None):
            continue
        if m.fuzzy:
            problems.append(f"{path}:{m.line}: fuzzy: {m.msgid[:60]!r}")
        if not m.msgstr or any(not s for s in m.msgstr):
            problems.append(f"{path}:{m.line}: untranslated: {m.msgid[:60]!r}")
    return problems


def compile_mo(catalog: Catalog, path: str = "<po>", *, strict: bool = True) -> bytes:
    """The GNU ``.mo`` bytes of ``catalog`` (refuses fuzzy or untranslated entries when strict)."""
    problems = check(catalog, path)
    if strict and problems:
        raise CatalogError("; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))
    entries: dict[str, str] = {}
    for m in catalog.messages:
        is_header = m.msgid == "" and m.msgctxt is None
        skip = m.obsolete or m.fuzzy or (not strict and (not m.msgstr or any(not s for s in m.msgstr)))
        if skip and not is_header:
            continue
        key = m.key if m.msgid_plural is None else f"{m.key}\x00{m.msgid_plural}"
        entries[key] = "\x00".join(m.msgstr)
    keys = sorted(entries)
    ids = b""
    strs = b""
    offsets = []
    for k in keys:
        kb, vb = k.encode("utf-8"), entries[k].encode("utf-8")
        offsets.append((len(ids), len(kb), len(strs), len(vb)))
        ids += kb + b"\x00"
        strs += vb + b"\x00"
    n = len(keys)
    keystart = 7 * 4 + 16 * n
    valuestart = keystart + len(ids)
    koffsets: list[int] = []
    voffsets: list[int] = []
    for o1, l1, o2, l2 in offsets:
        koffsets += [l1, o1 + keystart]
        voffsets += [l2, o2 + valuestart]
    header = struct.pack("Iiiiiii", 0x950412DE, 0, n, 7 * 4, 7 * 4 + n * 8, 0, 0)
    return (
        header + struct.pack(f"{len(koffsets)}i", *koffsets) + struct.pack(f"{len(voffsets)}i", *voffsets) + ids + strs
    )


def compile_file(po: Path, mo: Path | None = None) -> bytes:
    """Compile ``po``; write ``mo`` if given. Raises CatalogError on any problem."""
    data = compile_mo(parse_po(po.read_text("utf-8"), str(po)), str(po))
    if mo is not None:
        mo.parent.mkdir(parents=True, exist_ok=True)
        mo.write_bytes(data)
    return data


def compile_tree(locale_dir: Path, out_dir: Path) -> list[Path]:
    """Compile every ``<lang>/LC_MESSAGES/*.po`` under ``locale_dir`` into ``out_dir`` (same layout)."""
    written = []
    for po in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        target = out_dir / po.relative_to(locale_dir).with_suffix(".mo")
        compile_file(po, target)
        written.append(target)
    return written
