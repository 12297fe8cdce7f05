"""Build step on top of pyproject.toml: compile the reader pages' gettext catalogs.

``server/reader/locale/<lang>/LC_MESSAGES/messages.po`` (checked in) becomes
``messages.mo`` inside the build, so every regular install (wheel, sdist,
``pip install .``) ships compiled catalogs. The compiler is the project's own
dependency-free ``server/reader/msgfmt.py``; it refuses a catalog with an
untranslated or fuzzy entry, which fails the build.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
LOCALE = HERE / "server" / "reader" / "locale"


def _msgfmt():  # type: ignore[no-untyped-def]
    name = "_tamizdat_build_msgfmt"
    spec = importlib.util.spec_from_file_location(name, HERE / "server" / "reader" / "msgfmt.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class BuildPyWithCatalogs(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "tamizdat" / "server" / "reader" / "locale"
        for mo in _msgfmt().compile_tree(LOCALE, target):
            print(f"compiled catalog {mo.relative_to(self.build_lib)}")


setup(cmdclass={"build_py": BuildPyWithCatalogs})
