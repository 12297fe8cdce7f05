"""Catalogs: every UI string translated in ru, uk and fa, none fuzzy, none stale; .mo shipped in a wheel."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tamizdat.server.reader import i18n, msgfmt

READER = Path(i18n.__file__).resolve().parent
REPO = READER.parent.parent
PO = {lang: READER / "locale" / lang / "LC_MESSAGES" / "messages.po" for lang in i18n.LANGS if lang != "en"}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def source_ids() -> set[str]:
    """What pybabel extracts from the templates and Python (the same mapping as babel.cfg)."""
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    ids = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(READER), method_map, keywords={"_": None, "gettext": None}
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


@pytest.mark.parametrize("lang", sorted(PO))
def test_catalog_is_complete_and_not_fuzzy(lang: str) -> None:
    catalog = read_po(PO[lang].open("rb"), locale=lang)
    wanted = source_ids()
    have = {m.id for m in catalog if m.id}
    assert wanted - have == set(), f"{lang}: strings missing from the catalog (run pybabel update)"
    assert have - wanted == set(), f"{lang}: stale strings in the catalog"
    for m in catalog:
        if not m.id:
            continue
        assert m.string, f"{lang}: untranslated {m.id!r}"
        assert "fuzzy" not in m.flags, f"{lang}: fuzzy {m.id!r}"
        assert sorted(PLACEHOLDER.findall(m.id)) == sorted(PLACEHOLDER.findall(m.string)), (lang, m.id)
    assert not list(catalog.check()), f"{lang}: {list(catalog.check())[:3]}"
    # Our own compiler agrees and refuses nothing.
    msgfmt.compile_file(PO[lang])


def test_compiler_refuses_missing_and_fuzzy_strings() -> None:
    good = 'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\nmsgid "Leave"\nmsgstr "Уйти"\n'
    msgfmt.compile_mo(msgfmt.parse_po(good))
    with pytest.raises(msgfmt.CatalogError, match="untranslated"):
        msgfmt.compile_mo(msgfmt.parse_po(good + '\nmsgid "Save the file"\nmsgstr ""\n'))
    with pytest.raises(msgfmt.CatalogError, match="fuzzy"):
        msgfmt.compile_mo(msgfmt.parse_po(good + '\n#, fuzzy\nmsgid "Save the file"\nmsgstr "Сохранить"\n'))


def test_translations_are_used() -> None:
    assert i18n.translations("ru").gettext("Leave") == "Уйти"
    assert i18n.translations("uk").gettext("Leave") == "Піти"
    assert i18n.translations("fa").gettext("Leave") == "خروج"
    assert i18n.text_dir("fa") == "rtl" and i18n.text_dir("ru") == "ltr"


def test_language_choice() -> None:
    assert i18n.choose("fa", "ru") == i18n.Choice("fa", True)
    assert i18n.choose("xx", "uk-UA, ru;q=0.8") == i18n.Choice("uk", False)
    assert i18n.choose(None, "de, ru;q=0.5, en;q=0.9") == i18n.Choice("en", False)
    assert i18n.choose(None, "de, ru;q=0") == i18n.Choice("en", False)
    assert i18n.choose(None, None) == i18n.Choice("en", False)


@pytest.mark.slow
def test_a_regular_install_ships_compiled_catalogs(tmp_path: Path) -> None:
    """Build a wheel from a copy of the tree (no editable install): .mo inside, no .po, and they load."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns(
        ".git",
        ".venv",
        "typed-venv",
        "build",
        "dist",
        "*.egg-info",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        "results",
        "*.mo",
        "node_modules",
    )
    shutil.copytree(REPO, src, ignore=ignore)
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    wheel = next(out.glob("tamizdat-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for lang in PO:
            mo = f"tamizdat/server/reader/locale/{lang}/LC_MESSAGES/messages.mo"
            assert mo in names, mo
            import gettext

            t = gettext.GNUTranslations(io.BytesIO(zf.read(mo)))
            assert t.gettext("Save the file") != "Save the file"
        assert not [n for n in names if n.endswith(".po")]
        for tpl in ("page.html", "gate.html", "style.css", "leave.js", "landing.js"):
            assert f"tamizdat/server/reader/templates/{tpl}" in names
    # Install it into a fresh target and render a page from there, with only the .mo.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    # -S: no site module, so the editable install's finder is not loaded; dependencies come from purelib.
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "import tamizdat.server.reader.i18n as i, tamizdat.server.reader.views as v;"
        "assert i.__file__.startswith(sys.argv[1]), i.__file__;"
        "print(i.translations('fa').gettext('Leave'));"
        "print('rtl' if 'dir=\"rtl\"' in v.render('problem.html','fa',ui={'lang':'fa','dir':'rtl'},title='t',"
        "url=lambda p:p,langs=[],leave_url='https://x',stale_since=None,noindex=False,landing=False,code='x',"
        "reason=None) else 'ltr')"
    )
    purelib = sysconfig.get_paths()["purelib"]
    res = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(target), purelib],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["خروج", "rtl"]
