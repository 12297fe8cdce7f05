"""The reader pages (home, article, save, share, verify help, mirrors, clear) and the share/fetch CLI.

Wire them into an app with :func:`add_reader_routes`; they read only
``DATA/public`` and show only bundles that verify against its ``root.json``.
"""

from __future__ import annotations

from .routes import READER, Reader, add_reader_routes

__all__ = ["READER", "Reader", "add_reader_routes"]
