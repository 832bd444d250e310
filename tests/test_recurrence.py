"""Repeating rules in local wall time: the same local time across daylight-saving changes, and proper ends."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from saas.posts.recurrence import RecurrenceError, Rule, local_occurrences, moment_of, next_after


def test_a_weekly_repeat_across_both_changes_keeps_its_local_time():
    rule = Rule("weekly", count=34)
    start = datetime(2026, 3, 16, 9, 0)  # a Monday, two weeks before clocks go forward in Berlin
    moments = [moment_of(local, "Europe/Berlin") for local in local_occurrences(rule, start)]
    assert {local.time() for local, _ in moments} == {datetime(2026, 1, 1, 9, 0).time()}
    assert {local.weekday() for local, _ in moments} == {0}
    by_day = {local.date(): utc for local, utc in moments}
    assert by_day[date(2026, 3, 23)] == datetime(2026, 3, 23, 8, 0, tzinfo=UTC)  # CET
    assert by_day[date(2026, 3, 30)] == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # CEST
    assert by_day[date(2026, 10, 19)] == datetime(2026, 10, 19, 7, 0, tzinfo=UTC)  # CEST
    assert by_day[date(2026, 10, 26)] == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # CET again
    assert len(moments) == 34


def test_an_occurrence_in_the_skipped_hour_moves_to_just_after_it():
    rule = Rule("daily", count=3)
    locals_ = [moment_of(t, "Europe/Berlin")[0] for t in local_occurrences(rule, datetime(2026, 3, 28, 2, 30))]
    assert locals_ == [datetime(2026, 3, 28, 2, 30), datetime(2026, 3, 29, 3, 0), datetime(2026, 3, 30, 2, 30)]


def test_weekdays_interval_and_ends():
    rule = Rule("weekly", interval=2, weekdays=(1, 3), until=date(2026, 7, 31))
    got = list(local_occurrences(rule, datetime(2026, 7, 7, 18, 0)))  # a Tuesday
    assert [d.day for d in got] == [7, 9, 21, 23]
    monthly = list(local_occurrences(Rule("monthly", count=3), datetime(2026, 1, 31, 8, 0)))
    assert [d.date() for d in monthly] == [date(2026, 1, 31), date(2026, 3, 31), date(2026, 5, 31)]  # no 31 Feb


def test_next_after_skips_missed_occurrences():
    rule = Rule("daily")
    number, local, moment = next_after(
        rule, datetime(2026, 5, 1, 9, 0), "UTC", datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
    )
    assert (number, local) == (11, datetime(2026, 5, 11, 9, 0))
    assert next_after(Rule("daily", count=2), datetime(2026, 5, 1, 9), "UTC", datetime(2026, 6, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"freq": "hourly"}, "Choose daily, weekly or monthly."),
        ({"freq": "daily", "interval": 0}, "Repeat every 1 to 365 days."),
        ({"freq": "weekly", "weekdays": (7,)}, "Choose weekdays from Monday to Sunday."),
        ({"freq": "daily", "count": 0}, "End after 1 to 1000 times."),
    ],
)
def test_unusable_rules_are_refused(kwargs, message):
    with pytest.raises(RecurrenceError, match=message):
        Rule(**kwargs)
