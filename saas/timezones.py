"""The one place that turns UTC into a person's or a workspace's local time, and back."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from functools import cache


@cache
def timezones() -> tuple[str, ...]:
    """IANA zone names offered in forms (Area/City, plus UTC)."""
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


@cache
def _zone_set() -> frozenset[str]:
    return frozenset(timezones())


def is_timezone(name: str) -> bool:
    return name in _zone_set()


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
    """A wall-clock time that does not exist in the zone (the hour skipped when clocks go forward).

    `alternatives` are the nearest wall-clock times that do exist: the last minute
    before the jump and the first minute after it.
    """

    def __init__(self, message: str, alternatives: tuple[datetime, ...] = ()) -> None:
        super().__init__(message)
        self.alternatives = alternatives


class AmbiguousTimeError(ValueError):
    """A wall-clock time that happens twice (clocks going back): the person must say which.

    `choices` are the two UTC moments, earlier first (fold=0, then fold=1).
    """

    def __init__(self, message: str, choices: tuple[datetime, datetime]) -> None:
        super().__init__(message)
        self.choices = choices


def _round_trips(local: datetime, tz: zoneinfo.ZoneInfo, fold: int) -> bool:
    aware = local.replace(tzinfo=tz, fold=fold)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def is_ambiguous(local: datetime, zone: str) -> bool:
    tz = zoneinfo.ZoneInfo(zone)
    return local.replace(tzinfo=tz, fold=0).utcoffset() != local.replace(tzinfo=tz, fold=1).utcoffset()


def _gap_edges(local: datetime, tz: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """The last existing minute before a skipped `local` and the first one after it."""
    before = local
    while not _round_trips(before, tz, 0):
        before -= timedelta(minutes=1)
    after = local
    while not _round_trips(after, tz, 0):
        after += timedelta(minutes=1)
    return before, after


def to_utc(local: datetime, zone: str, fold: int | None = 0) -> datetime:
    """The UTC moment of a wall-clock time in `zone`.

    A time skipped by a daylight-saving jump raises LocalTimeError with the nearest
    valid times. A time that happens twice (clocks going back) means the first of
    the two when `fold` is 0, the second when 1, and raises AmbiguousTimeError when
    `fold` is None (the person has not said which yet).
    """
    if local.tzinfo is not None:
        raise ValueError("expected a wall-clock time without a zone")
    tz = zoneinfo.ZoneInfo(zone)
    if not _round_trips(local, tz, 0):
        before, after = _gap_edges(local, tz)
        raise LocalTimeError(
            f"{local:%H:%M} does not exist on {local:%-d %b %Y} in {zone}: the clocks skip that hour. "
            f"Pick another time, for example {before:%H:%M} or {after:%H:%M}.",
            (before, after),
        )
    if is_ambiguous(local, zone):
        first = local.replace(tzinfo=tz, fold=0)
        second = local.replace(tzinfo=tz, fold=1)
        if fold is None:
            raise AmbiguousTimeError(
                f"{local:%H:%M} happens twice on {local:%-d %b %Y} in {zone} (the clocks go back): "
                f"choose {first.tzname()} (the first) or {second.tzname()} (the second).",
                (first.astimezone(UTC), second.astimezone(UTC)),
            )
        return (second if fold else first).astimezone(UTC)
    return local.replace(tzinfo=tz).astimezone(UTC)
