"""Adding media from a URL: the web request records the wish, a worker fetches (saas.safefetch) and uploads.

The fetch never happens in the web request: a slow or hostile server would hold a web process. The job
runs the same checks as an upload (saas.media.service), and records why when it fails.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from saas import safefetch
from saas.media import service
from saas.media.models import STALLED_AFTER, ImportState, MediaImport
from tenants import tenant_session

log = logging.getLogger(__name__)

QUEUE = "default"
MAX_URL = 2000
MAX_PENDING = 10  # per workspace: a page of addresses, not a way to keep our workers busy


def request(session: so.Session, *, url: str, alt: str, requested_by: int) -> MediaImport:
    """Record an import after the checks that need no network; MediaError says what is wrong with `url`."""
    url = url.strip()
    if not url:
        raise service.MediaError("Enter the address of an image or video.")
    if len(url) > MAX_URL:
        raise service.MediaError(f"Keep the address to {MAX_URL} characters.")
    if len(alt) > service.MAX_ALT:
        raise service.MediaError(f"Keep the alt text to {service.MAX_ALT} characters.")
    try:
        safefetch.parse(url, safefetch.app_policy())
    except safefetch.FetchRefused as exc:
        raise service.MediaError(str(exc)) from None
    # Selecting the model's column (not a bare count) keeps the tenant scoping on this query.
    waiting = sa.select(MediaImport.id).where(
        MediaImport.state.in_([ImportState.QUEUED, ImportState.FETCHING]),
        MediaImport.created_at > datetime.now(UTC) - STALLED_AFTER,
    )
    if len(session.scalars(waiting.limit(MAX_PENDING)).all()) >= MAX_PENDING:
        raise service.MediaError(f"{MAX_PENDING} addresses are being fetched already; add more when they are done.")
    row = MediaImport(url=url, alt=alt.strip(), requested_by=requested_by, state=ImportState.QUEUED)
    session.add(row)
    session.flush()
    return row


def enqueue(connection: Redis, tenant_id: int, import_id: int) -> None:
    queue = Queue(QUEUE, connection=connection, serializer=JSONSerializer)
    queue.enqueue(import_media, tenant_id, import_id, job_id=f"media-import-{tenant_id}-{import_id}")


def recent(session: so.Session, limit: int = 10) -> list[MediaImport]:
    return list(
        session.scalars(
            sa.select(MediaImport).order_by(MediaImport.created_at.desc(), MediaImport.id.desc()).limit(limit)
        )
    )


def import_media(tenant_id: int, import_id: int) -> str:
    """Job: fetch the import's URL and add it to the library, or record why not. Runs once per import."""
    with tenant_session(tenant_id) as session:
        row = session.scalar(sa.select(MediaImport).where(MediaImport.id == import_id).with_for_update())
        if row is None or row.state is not ImportState.QUEUED:
            return "not queued"
        row.state = ImportState.FETCHING
        session.commit()
        url, alt, requested_by = row.url, row.alt, row.requested_by
    try:
        fetched = safefetch.fetch(url, safefetch.app_policy(max_bytes=service.MAX_VIDEO_BYTES))
        with tenant_session(tenant_id) as session:
            item = service.upload(
                session, filename=_label(fetched.url), data=fetched.data, alt=alt, uploaded_by=requested_by
            )
            _finish(session, import_id, ImportState.DONE, media_id=item.id)
            session.commit()
    except (safefetch.FetchRefused, service.MediaError) as exc:
        _record_failure(tenant_id, import_id, str(exc))
        return "failed"
    except Exception:
        _record_failure(tenant_id, import_id, "Something went wrong while fetching it. Try again.")
        raise
    return "done"


def _label(url: str) -> str:
    """A name for people, from the last part of the address (never used as a path)."""
    path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return service.display_name(path.rsplit("/", 1)[-1] if "/" in path.split("://", 1)[-1] else "")


def _finish(session: so.Session, import_id: int, state: ImportState, *, media_id: int | None = None,
            error: str | None = None) -> None:  # fmt: skip
    row = session.scalar(sa.select(MediaImport).where(MediaImport.id == import_id))
    if row is not None:
        row.state, row.media_id, row.error, row.finished_at = state, media_id, error, datetime.now(UTC)


def give_up(session: so.Session, import_id: int, reason: str) -> None:
    """Mark the import failed with `reason` (the caller commits)."""
    _finish(session, import_id, ImportState.FAILED, error=reason)


def _record_failure(tenant_id: int, import_id: int, reason: str) -> None:
    log.info("media import %s of tenant %s failed: %s", import_id, tenant_id, reason)
    with tenant_session(tenant_id) as session:
        give_up(session, import_id, reason)
        session.commit()
