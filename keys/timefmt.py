"""Times in signed documents: ``YYYY-MM-DDTHH:MM:SSZ``, UTC, whole seconds."""

from __future__ import annotations

import datetime as dt
import functools
import re

from tamizdat.errors import FormatError

_PATTERN = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")


def parse(text: object, *, field: str = "time", step: str | None = None) -> dt.datetime:
    """Parse a strict UTC timestamp; reject every other spelling."""
    if not isinstance(text, str) or not _PATTERN.match(text):
        raise FormatError(f"{field} must look like 2026-01-31T12:00:00Z", code="bad-time", step=step)
    try:
        return _moment(text)
    except ValueError as exc:
        raise FormatError(f"{field} is not a real date", code="bad-time", step=step) from exc


@functools.lru_cache(maxsize=256)
def _moment(text: str) -> dt.datetime:
    """The (immutable) datetime of a well-spelled timestamp: a root chain repeats a few of them
    many times (key windows in every version). Raises ValueError for an impossible date."""
    return dt.datetime(
        int(text[0:4]),
        int(text[5:7]),
        int(text[8:10]),
        int(text[11:13]),
        int(text[14:16]),
        int(text[17:19]),
        tzinfo=dt.UTC,
    )


def format(moment: dt.datetime) -> str:
    """Format an aware datetime (or naive UTC) in the strict form."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> dt.datetime:
    """The current UTC time, truncated to whole seconds."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
