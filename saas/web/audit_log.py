"""The workspace's audit log for its owners and admins: filters, pages, and the filtered set as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, g, render_template, request, stream_with_context, url_for
from flask_login import current_user

from saas import audit, db, timezones
from saas.security import TEAM_MANAGERS, require_role
from tenants import tenant_session

PER_PAGE = 50
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): we quote it as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Query:
    """The filters as typed (kept in links and the form), what they mean, and what was wrong with them."""

    args: dict[str, Any]  # str values; Any so they pass to url_for as query parameters
    where: audit.AuditFilter
    errors: dict[str, str]


def _date(raw: str, name: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Enter a date as YYYY-MM-DD."
        return None


def _start_of(day: date, zone: str) -> datetime:
    # zoneinfo picks the first valid instant for a midnight that clocks skip, so this never raises.
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def read_query(zone: str) -> Query:
    args = {key: request.args.get(key, "").strip() for key in ("who", "kind", "from", "to")}
    errors: dict[str, str] = {}
    if args["kind"] and args["kind"] not in audit.KINDS:
        errors["kind"] = "Choose one of the listed kinds."
    first, last = _date(args["from"], "from", errors), _date(args["to"], "to", errors)
    if first and last and first > last:
        errors["to"] = "The end date is before the start date."
    where = audit.AuditFilter(
        who=args["who"] or None,
        kind=args["kind"] if "kind" not in errors and args["kind"] else None,
        since=_start_of(first, zone) if first and not errors else None,
        until=_start_of(last + timedelta(days=1), zone) if last and not errors else None,
    )
    return Query({k: v for k, v in args.items() if v}, where, errors)


@require_role(*TEAM_MANAGERS)
def page() -> Any:
    zone = current_user.timezone
    query = read_query(zone)
    number = max(1, request.args.get("page", 1, type=int) or 1)
    rows = audit.listing(db.session(), query.where, offset=(number - 1) * PER_PAGE, limit=PER_PAGE + 1)
    return render_template(
        "audit/index.html",
        rows=rows[:PER_PAGE],
        query=query,
        kinds=audit.KINDS,
        actors=audit.actors(db.session()),
        zone=zone,
        page=number,
        newer=url_for("workspace.audit", **query.args, page=number - 1) if number > 1 else None,
        older=url_for("workspace.audit", **query.args, page=number + 1) if len(rows) > PER_PAGE else None,
        export=url_for("workspace.audit_export", **query.args),
    ), 422 if query.errors else 200


@require_role(*TEAM_MANAGERS)
def export() -> Any:
    """The filtered log as CSV, written as it is read (a long log never sits in memory)."""
    zone = current_user.timezone
    query = read_query(zone)
    if query.errors:
        return page()
    tenant_id = g.workspace.tenant_id
    name = f"audit-{g.workspace.slug}-{datetime.now(UTC):%Y%m%d}.csv"

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["time (UTC)", f"local time ({zone})", "who", "for agency", "kind", "action", "detail"])
        yield _drain(out)
        # The view's session is closed when it returns, before the body is sent: the stream opens its own.
        with tenant_session(tenant_id) as session:
            for row in audit.stream(session, query.where):
                local = timezones.to_local(row.at, zone)
                kind = audit.KINDS.get(row.kind, row.kind)
                text = [row.who, row.agency or "", kind, row.action, row.detail or ""]
                times = [row.at.astimezone(UTC).isoformat(timespec="seconds"), local.isoformat(timespec="seconds")]
                writer.writerow(times + [safe_cell(cell) for cell in text])
                yield _drain(out)

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


def _drain(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value
