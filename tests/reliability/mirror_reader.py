"""A mirror process with the reader pages mounted where ``mirror/app.py`` marks their place.

    python -m tests.reliability.mirror_reader --data DIR --root-key ID --upstream URL --listen HOST:PORT --interval S

The same as ``tamizdat mirror run`` (same settings resolution, same app, same
background sync, same server) plus ``server.reader.add_reader_routes`` over the
mirror's data directory, as the comment in ``mirror.app.make_app`` prescribes.
The load test uses it only while ``tamizdat mirror run`` itself answers 404 on
``/`` (test_load.test_mirror_serves_reader_pages tracks that gap).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tamizdat.mirror.app import make_app, run
from tamizdat.mirror.cli import resolve
from tamizdat.mirror.sync import Mirror
from tamizdat.server.datadir import DataDir
from tamizdat.server.reader import add_reader_routes


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="mirror_reader")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--root-key", required=True)
    parser.add_argument("--upstream", action="append", default=[])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--interval", type=int, default=300)
    args = parser.parse_args(argv)
    data = DataDir(args.data)
    values = resolve(data, args.root_key, tuple(args.upstream), sync_interval=args.interval, listen=args.listen)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mirror = Mirror(
        data,
        root_keyid=values["root_keyid"],
        upstreams=values["upstreams"],
        keep_superseded=bool(values["keep_superseded"]),
    )
    app = make_app(mirror, interval=float(values["sync_interval"]))
    add_reader_routes(app, mirror.data, settings=values)
    run(app, values["listen"], access_log=bool(values["access_log"]))


if __name__ == "__main__":
    main(sys.argv[1:])
