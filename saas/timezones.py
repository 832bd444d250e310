"""The one place that turns UTC into a person's or a workspace's local time, and back."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
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
    """'26 Nov 2026, 14:05 GMT (Europe/London)' or '… 14:05 UTC': always with its time zone."""
    if moment is None:
        return ""
    local = to_local(moment, zone)
    abbreviation = local.tzname()
    named = zone if abbreviation == zone else f"{abbreviation} ({zone})"
    return f"{local:%-d %b %Y, %H:%M} {named}"


class LocalTimeError(ValueError):
    """A wall-clock time that does not exist in the zone (the hour skipped when clocks go forward)."""


def to_utc(local: datetime, zone: str) -> datetime:
    """The UTC moment of a wall-clock time in `zone`.

    A time skipped by a daylight-saving jump is refused; a time that happens twice
    (clocks going back) means the first of the two (fold=0).
    """
    if local.tzinfo is not None:
        raise ValueError("expected a wall-clock time without a zone")
    tz = zoneinfo.ZoneInfo(zone)
    aware = local.replace(tzinfo=tz, fold=0)
    moment = aware.astimezone(UTC)
    if moment.astimezone(tz).replace(tzinfo=None) != local:
        raise LocalTimeError(
            f"{local:%H:%M} does not exist on {local:%-d %b %Y} in {zone}: the clocks skip that hour. "
            "Pick another time."
        )
    return moment
