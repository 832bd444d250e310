"""Local wall-clock time ↔ UTC, across daylight saving changes, always shown with the zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from saas import timezones


def test_format_names_the_zone():
    moment = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert timezones.format_local(moment, "Europe/London") == "1 Jul 2026, 13:00 BST (Europe/London)"
    assert timezones.format_local(moment, "UTC") == "1 Jul 2026, 12:00 UTC"


def test_wall_time_becomes_utc():
    assert timezones.to_utc(datetime(2026, 7, 1, 9, 0), "America/Chicago") == datetime(2026, 7, 1, 14, 0, tzinfo=UTC)


def test_time_skipped_by_spring_forward_is_refused():
    with pytest.raises(timezones.LocalTimeError, match="clocks skip that hour"):
        timezones.to_utc(datetime(2026, 3, 29, 2, 30), "Europe/Berlin")


def test_time_repeated_by_fall_back_means_the_first_one():
    # 02:30 happens twice in Berlin on 25 Oct 2026: first in summer time (UTC+2).
    assert timezones.to_utc(datetime(2026, 10, 25, 2, 30), "Europe/Berlin") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_aware_input_is_refused():
    with pytest.raises(ValueError):
        timezones.to_utc(datetime(2026, 7, 1, 9, 0, tzinfo=UTC), "UTC")
