"""A calendar window as CSV: the import's columns first, so an export can be edited and imported again."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from saas.posts.calendar import Entry

COLUMNS = ("text", "channels", "date", "time", "tags", "timezone", "state", "scheduled_at_utc", "post_id")


def _safe(value: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet: quote it so it stays text.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(entries: Iterable[Entry], zone: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for e in entries:
        writer.writerow(
            [
                _safe(e.snippet),  # the whole text: the export reads the window with full_text=True
                "; ".join(e.channels),  # handles without "@", which a spreadsheet may read as a formula
                f"{e.local:%Y-%m-%d}" if e.local else "",
                f"{e.local:%H:%M}" if e.local else "",
                _safe("; ".join(e.tags)),
                zone,
                e.state,
                e.scheduled_at.isoformat() if e.scheduled_at else "",
                e.post_id,
            ]
        )
    return out.getvalue()
