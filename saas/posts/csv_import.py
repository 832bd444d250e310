"""Bulk scheduling from a CSV file: a preview listing each row's problems, then an import of the good rows.

Every row is checked by the same `schedule_post` that the composer uses, inside a
savepoint that is rolled back, so the preview refuses exactly what scheduling would.
Nothing is written until the person confirms.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.channels.models import Channel
from saas.media.models import MediaItem
from saas.posts import service
from saas.posts.service import ComposeError, Extras, Schedule

REQUIRED = ("text", "channels", "date", "time")
OPTIONAL = ("media", "tags")
MAX_ROWS = 1000
MAX_BYTES = 2 * 1024 * 1024


class CsvError(ValueError):
    """The file as a whole cannot be read; the message says what to fix."""


@dataclass
class Row:
    line: int  # as a spreadsheet numbers it: the header is line 1
    text: str
    channels: str
    when: str
    problems: list[str] = field(default_factory=list)
    channel_ids: list[int] = field(default_factory=list)
    media_ids: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    local_time: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def read(data: bytes) -> list[dict[str, str]]:
    """The file's rows as dicts keyed by lower-case column names; CsvError for encoding, header or size."""
    if len(data) > MAX_BYTES:
        raise CsvError(f"The file is larger than {MAX_BYTES // 2**20} MB. Split it into smaller files.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvError(
            f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read). "
            "In your spreadsheet, save it as “CSV UTF-8” and upload it again."
        ) from None
    if not text.strip():
        raise CsvError("The file is empty.")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [(name or "").strip().lower() for name in reader.fieldnames or ()]
    except csv.Error as exc:
        raise CsvError(f"The file is not valid CSV: {exc}.") from None
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise CsvError(
            "The first row must name the columns "
            f"{', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)}); missing: {', '.join(missing)}."
        )
    reader.fieldnames = header
    try:
        rows = [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]
    except csv.Error as exc:
        raise CsvError(f"The file is not valid CSV near line {reader.line_num}: {exc}.") from None
    if len(rows) > MAX_ROWS:
        raise CsvError(f"The file has {len(rows):,} rows; import at most {MAX_ROWS:,} at a time.")
    if not rows:
        raise CsvError("The file has a header but no rows.")
    return rows


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.replace(",", ";").split(";") if part.strip()]


def check(session: so.Session, rows: list[dict[str, str]], zone: str, author_id: int) -> list[Row]:
    """Each row with its problems (empty: it would be scheduled as it is)."""
    channels = {c.handle.lower(): c for c in session.scalars(sa.select(Channel))}
    media = {m.filename.lower(): m.id for m in session.scalars(sa.select(MediaItem).order_by(MediaItem.id.desc()))}
    checked = []
    for number, values in enumerate(rows, start=2):
        row = Row(number, values.get("text", ""), values.get("channels", ""), f"{values['date']} {values['time']}")
        _check_time(row, values["date"], values["time"])
        for handle in _names(row.channels) or [""]:
            channel = channels.get(handle.lstrip("@").lower())
            if not handle:
                row.problems.append("No channel: name one or more, like @bakery; @cafe.")
            elif channel is None:
                row.problems.append(f"Unknown channel {handle!r}: this workspace has no channel with that handle.")
            else:
                row.channel_ids.append(channel.id)
        media_ids = []
        for name in _names(values.get("media", "")):
            found = media.get(name.lower())
            if found is None:
                row.problems.append(f"Missing media {name!r}: upload it to the media library first.")
            else:
                media_ids.append(found)
        row.media_ids = tuple(media_ids)
        row.tags = tuple(_names(values.get("tags", "")))
        if not row.problems:
            _check_with_the_service(session, row, zone, author_id)
        checked.append(row)
    return checked


def _check_time(row: Row, day: str, at: str) -> None:
    try:
        # Spreadsheets drop the leading zero of "09:30": accept "9:30" too.
        row.local_time = datetime.combine(date.fromisoformat(day), time.fromisoformat(at.zfill(5)))
    except ValueError:
        row.problems.append(f"Bad date or time {day!r} {at!r}: use a date like 2026-12-31 and a time like 09:30.")


def _check_with_the_service(session: so.Session, row: Row, zone: str, author_id: int) -> None:
    savepoint = session.begin_nested()
    try:
        _schedule(session, row, zone, author_id)
    except ComposeError as exc:
        row.problems.append(exc.message)
    finally:
        savepoint.rollback()


def _schedule(session: so.Session, row: Row, zone: str, author_id: int) -> int:
    post = service.schedule_post(
        session,
        author_id=author_id,
        text=row.text,
        channel_ids=row.channel_ids,
        # A time that happens twice takes its first occurrence: a file cannot be asked which.
        schedule=Schedule(publish_now=False, local_time=row.local_time, timezone=zone, fold=0),
        extras=Extras(media_ids=row.media_ids, tags=row.tags),
    )
    return post.id


def import_rows(session: so.Session, rows: list[dict[str, str]], zone: str, author_id: int) -> tuple[list[int], int]:
    """Schedule every row without problems (checked again now); returns (new post ids, rows skipped)."""
    checked = check(session, rows, zone, author_id)
    created = [_schedule(session, row, zone, author_id) for row in checked if row.ok]
    return created, sum(1 for row in checked if not row.ok)
