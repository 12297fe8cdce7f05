"""Typed application state (aiohttp ``web.AppKey``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .origin import Origin

ORIGIN = web.AppKey("origin", Origin)
SETTINGS = web.AppKey("settings", dict[str, Any])
