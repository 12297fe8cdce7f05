"""An access log that never records who asked: method, path, status and time only.

Off by default (``access_log = false``: the app runs with ``access_log=None``).
When on, this logger replaces aiohttp's, whose default format starts with the
client address (``%a``). No address, no headers (User-Agent, Referer, forwarded
addresses) and no query string are written.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

LOGGER_NAME = "tamizdat.access"


class PrivateAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info("%s %s %d %.1fms", request.method, request.path, response.status, time * 1000)


def access_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)
