"""The ``tamizdat`` command: one click group; each package adds its own subcommands."""

from __future__ import annotations

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tamizdat")
def main() -> None:
    """Signed news bundles that survive censorship: publish, mirror, verify, share."""


def _register() -> None:
    from tamizdat.bundles.cli import register as register_bundles
    from tamizdat.demo.run import demo_cmd
    from tamizdat.keys.cli import register as register_keys
    from tamizdat.mirror.cli import register as register_mirror
    from tamizdat.server.cli import register as register_server
    from tamizdat.server.reader.cli import register as register_reader

    for register in (register_keys, register_bundles, register_server, register_mirror, register_reader):
        register(main)
    main.add_command(demo_cmd)


_register()
