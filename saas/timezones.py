"""The one place that turns UTC into a person's or a workspace's local time, and back."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import cache


@cache
def timezones() -> tuple[str, ...]:
    """IANA zone names offered in forms (Area/City, plus UTC)."""
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def is_timezone(name: str) -> bool:
    return name in timezones()


def to_local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(zoneinfo.ZoneInfo(zone))


def format_local(moment: datetime | None, zone: str) -> str:
    """'26 Nov 2026, 14:05 GMT (Europe/London)': always with its time zone."""
    if moment is None:
        return ""
    local = to_local(moment, zone)
    return f"{local:%-d %b %Y, %H:%M} {local.tzname()} ({zone})"
