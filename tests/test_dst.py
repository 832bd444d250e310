"""Wall times across daylight-saving changes: a skipped time is refused with valid ones offered, a doubled one asks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from saas import timezones
from saas.posts.service import ComposeError, Schedule, resolve_time

BEFORE_BOTH = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_time_in_the_spring_gap_is_refused_with_the_nearest_valid_times():
    with pytest.raises(timezones.LocalTimeError) as refused:
        timezones.to_utc(datetime(2026, 3, 29, 2, 30), "Europe/Berlin")
    assert refused.value.alternatives == (datetime(2026, 3, 29, 1, 59), datetime(2026, 3, 29, 3, 0))
    assert "01:59 or 03:00" in str(refused.value)


def test_scheduling_in_the_spring_gap_offers_the_valid_times_as_choices():
    schedule = Schedule(False, datetime(2026, 3, 29, 2, 30), "Europe/Berlin")
    with pytest.raises(ComposeError) as refused:
        resolve_time(schedule, BEFORE_BOTH)
    assert refused.value.field == "when"
    assert "the clocks skip that hour" in refused.value.message
    assert [c.local_time for c in refused.value.choices] == [datetime(2026, 3, 29, 1, 59), datetime(2026, 3, 29, 3)]
    chosen = refused.value.choices[1]
    moment = resolve_time(Schedule(False, chosen.local_time, "Europe/Berlin", chosen.fold), BEFORE_BOTH)
    assert moment == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST


def test_an_ambiguous_autumn_time_asks_which_one():
    local = datetime(2026, 10, 25, 2, 30)
    with pytest.raises(ComposeError) as asked:
        resolve_time(Schedule(False, local, "Europe/Berlin"), BEFORE_BOTH)
    assert "happens twice" in asked.value.message
    labels = [c.label for c in asked.value.choices]
    assert labels == ["02:30 CEST (first)", "02:30 CET (second)"]
    first = resolve_time(Schedule(False, local, "Europe/Berlin", fold=0), BEFORE_BOTH)
    second = resolve_time(Schedule(False, local, "Europe/Berlin", fold=1), BEFORE_BOTH)
    assert (first, second) == (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC))


def test_a_past_time_offers_publish_now():
    with pytest.raises(ComposeError) as refused:
        resolve_time(Schedule(False, datetime(2025, 12, 31, 9, 0), "Europe/Berlin"), BEFORE_BOTH)
    assert "has already passed" in refused.value.message
    assert [c.publish_now for c in refused.value.choices] == [True]


def test_an_ordinary_time_needs_no_choice():
    moment = resolve_time(Schedule(False, datetime(2026, 7, 1, 9, 0), "Europe/Berlin"), BEFORE_BOTH)
    assert moment == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
