"""Commands for `flask --app wsgi ...`: the worker, the clock, the demo seed, and operators' tools.

Operators' commands exit 0 on success, 1 when the input is refused (the message says why) and 2 on a
usage error (click's own).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

QUEUES = ("publish", "default", "webhooks")


def init_app(app: Flask) -> None:
    app.cli.add_command(worker)
    app.cli.add_command(clock)
    app.cli.add_command(seed_demo)
    app.cli.add_command(rotate_keys)
    app.cli.add_command(approval_reminders)
    app.cli.add_command(new_encryption_key)
    app.cli.add_command(prune_sessions)
    app.cli.add_command(create_api_token)
    for command in (create_tenant, create_user, import_csv, resend_webhooks, status):
        app.cli.add_command(command)


@click.command()
@with_appcontext
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker on the publish, default and webhooks queues."""
    import sqlalchemy.orm as so
    from rq import Queue, SimpleWorker
    from rq.serializers import JSONSerializer

    import publishers
    import saas.publishing.jobs  # noqa: F401  (imported once, not per job)
    import saas.webhooks.delivery  # noqa: F401
    from saas.extensions import redis_client
    from saas.publishing.networks import publisher_for

    # Publishing is I/O-bound and each job is a batch: running jobs in this process (no fork per
    # job) keeps database connections, HTTP keep-alive and compiled SQL warm between jobs. A job
    # that dies with the process is recovered from its lease like any other.
    so.configure_mappers()
    for cls in publishers.PUBLISHERS:
        publisher_for(cls.capabilities.network)
    connection = redis_client()
    queues = [Queue(name, connection=connection, serializer=JSONSerializer) for name in QUEUES]
    # The app context stays pushed for the worker's life, so jobs can use config and the db.
    SimpleWorker(queues, connection=connection, serializer=JSONSerializer).work(burst=burst, with_scheduler=True)


@click.command()
@with_appcontext
def clock() -> None:
    """Run the dispatcher loop (the `clock` process). Safe to run more than one."""
    from saas import dispatcher
    from saas.extensions import redis_client

    dispatcher.run_forever(redis_client())


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Create the demo tenants and users once, and print the logins."""
    from saas import seed

    created = seed.seed_demo()
    click.echo(seed.describe(created, current_app.config["PUBLIC_BASE_URL"]))


@click.command("rotate-keys")
@click.option("--batch-size", default=200, show_default=True, help="Rows re-sealed per transaction.")
@with_appcontext
def rotate_keys(batch_size: int) -> None:
    """Re-seal every stored secret with the newest ENCRYPTION_KEYS key (safe while the app runs)."""
    from saas.channels.service import rotate_keys as rotate
    from saas.channels.service import sealed_with_older_keys

    report = rotate(batch_size)
    click.echo(f"Re-sealed {report.rotated} value(s) with the newest key.")
    if report.unreadable:
        raise click.ClickException(
            f"{len(report.unreadable)} value(s) open with no listed key (put their key back, or reconnect): "
            + ", ".join(report.unreadable)
        )
    left = sealed_with_older_keys()
    if left:
        click.echo(f"{left} value(s) were written with an older key meanwhile: run rotate-keys again.")
    else:
        click.echo("Nothing is sealed with an older key: the older keys can now leave ENCRYPTION_KEYS.")


@click.command("new-encryption-key")
def new_encryption_key() -> None:
    """Print a fresh key: put it first in ENCRYPTION_KEYS, then run rotate-keys."""
    from saas.crypto import new_key

    click.echo(new_key())


@click.command("approval-reminders")
def approval_reminders() -> None:
    """Email approvers a digest of what waits for them, and warn when an unapproved post is due soon."""
    from datetime import UTC, datetime

    from saas.approvals.reminders import send_reminders

    click.echo(f"{send_reminders(datetime.now(UTC))} reminders sent.")


@click.command("prune-sessions")
@with_appcontext
def prune_sessions() -> None:
    """Delete log-in sessions that ended more than 30 days ago (run it daily, e.g. from cron)."""
    from saas import db
    from saas.identity import sessions

    with db.new_session() as session:
        deleted = sessions.prune(session)
        session.commit()
    click.echo(f"Deleted {deleted} ended session(s).")


@click.command("create-api-token")
@with_appcontext
@click.option("--workspace", "slug", required=True, help="The workspace's slug (as in /w/<slug>/).")
@click.option("--user", "email", required=True, help="The member the token acts as (their email).")
@click.option("--name", required=True, help="What the token is for, shown in Settings → API tokens.")
@click.option("--scopes", default="read", show_default=True, help="Comma-separated: read, write, approve.")
def create_api_token(slug: str, email: str, name: str, scopes: str) -> None:
    """Make an API token and print it (shown only this once)."""
    import sqlalchemy as sa

    from saas import audit, db
    from saas.api import tokens
    from tenants import service as tenant_service
    from tenants import tenant_session
    from tenants.models import Tenant, User

    with db.new_session() as session:  # users and tenants are not tenant-scoped
        user = session.scalar(sa.select(User).where(User.email == email.strip().lower()))
        tenant_id = session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise click.ClickException(f"No workspace with the slug {slug!r}.")
    if user is None:
        raise click.ClickException(f"No user with the email {email!r}.")
    workspace = tenant_service.find_workspace(user.id, slug)
    with tenant_session(tenant_id) as session:
        try:
            token, secret = tokens.create(
                session, name=name, scopes=scopes.split(","), user_id=user.id, created_by_id=None
            )
        except tokens.TokenError as exc:
            raise click.ClickException(str(exc)) from None
        assert workspace is not None  # a member, or tokens.create refused
        audit.record(
            session, workspace, user.id, user.name, None, "cli", action=f"Created the API token “{name}” (command line)"
        )
        session.commit()
        click.echo(f"Token “{token.name}” for {user.email} in {slug}, scopes {', '.join(token.scopes)}:")
        click.echo(secret)
        click.echo("It is shown only this once; keep it somewhere safe.")


# --- operators' commands ------------------------------------------------------------------------------------


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)  # printed as "Error: …", exit status 1


def _workspace_session(slug: str):  # type: ignore[no-untyped-def]
    """A session bound to the workspace with this slug (exit 1 when there is none)."""
    import sqlalchemy as sa

    from saas import db
    from tenants.models import Tenant
    from tenants.scoping import bind_tenant

    session = db.new_session()
    tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        session.close()
        raise _fail(f"No workspace with the address {slug!r}.")
    bind_tenant(session, tenant.id)
    return session, tenant


@click.command("create-tenant")
@with_appcontext
@click.argument("name")
@click.option("--owner", "owner_email", required=True, help="Email of an existing user who will own it.")
@click.option("--kind", type=click.Choice(["direct", "agency", "client"]), default="direct", show_default=True)
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone, like Europe/Paris.")
@click.option("--managed-by", "agency_slug", help="For --kind client: the address (slug) of the managing agency.")
def create_tenant(name: str, owner_email: str, kind: str, timezone: str, agency_slug: str | None) -> None:
    """Create a workspace NAME owned by an existing user; prints its address."""
    import sqlalchemy as sa

    from saas import accounts, db, timezones
    from tenants import service as tenant_service
    from tenants.models import Tenant, TenantKind

    name = name.strip()
    if not name or len(name) > 120:
        raise _fail("Give the workspace a name of 1 to 120 characters.")
    if not timezones.is_timezone(timezone):
        raise _fail(f"Unknown time zone {timezone!r}: use an IANA name like Europe/Paris.")
    if (kind == "client") != (agency_slug is not None):
        raise _fail("A client workspace needs --managed-by <agency address>, and only a client takes it.")
    with db.new_session() as session:
        owner = accounts.user_by_email(session, owner_email)
        if owner is None:
            raise _fail(f"No user with the email {owner_email!r}. Create it first with create-user.")
        agency = None
        if agency_slug is not None:
            agency = session.scalar(sa.select(Tenant).where(Tenant.slug == agency_slug))
            if agency is None or agency.kind is not TenantKind.AGENCY:
                raise _fail(f"No agency workspace with the address {agency_slug!r}.")
        tenant = tenant_service.create_tenant(
            session, name=name, kind=TenantKind(kind), owner=owner, managed_by=agency, timezone=timezone
        )
        session.commit()
        click.echo(
            f"Created {tenant.kind.value} workspace {tenant.name!r} at /w/{tenant.slug}/, owned by {owner.email}."
        )


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.option("--name", required=True, help="The person's name, as others see it.")
@click.option("--timezone", default="UTC", show_default=True)
@click.option(
    "--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Asked for when not given (hidden)."
)
@click.option("--workspace", "slug", help="Also add them to this workspace (its address)...")
@click.option(
    "--role",
    type=click.Choice(["owner", "admin", "editor", "reviewer", "viewer"]),
    default="editor",
    show_default=True,
    help="...with this role.",
)
def create_user(email: str, name: str, timezone: str, password: str, slug: str | None, role: str) -> None:
    """Create a verified user EMAIL (the password is checked like at sign-up)."""
    from email_validator import EmailNotValidError, validate_email

    from saas import accounts, db, timezones
    from saas.accounts import PasswordRejected
    from tenants.models import Membership, Role

    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise _fail(f"{email!r} is not an email address: {exc}") from None
    if not name.strip() or len(name) > 120:
        raise _fail("Give a name of 1 to 120 characters.")
    if not timezones.is_timezone(timezone):
        raise _fail(f"Unknown time zone {timezone!r}: use an IANA name like Europe/Paris.")
    session, tenant = _workspace_session(slug) if slug else (db.new_session(), None)
    with session:
        if accounts.user_by_email(session, email) is not None:
            raise _fail(f"A user with the email {email!r} already exists.")
        try:
            user = accounts.create_user(
                session, email=email, name=name, password=password, verified=True, timezone=timezone
            )
        except PasswordRejected as exc:
            raise _fail(str(exc)) from None
        if tenant is not None:
            session.add(Membership(user_id=user.id, role=Role(role)))
        session.commit()
    where = f" and added them to /w/{tenant.slug}/ as {role}" if tenant is not None else ""
    click.echo(f"Created user {user.email}{where}.")


@click.command("import-csv")
@with_appcontext
@click.argument("slug")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "author_email", required=True, help="The member who schedules the posts (editor or above).")
@click.option("--dry-run", is_flag=True, help="Check every row and print the problems; import nothing.")
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Import the good rows even when others have problems (what confirming the web preview does).",
)
def import_csv(slug: str, csv_file: Path, author_email: str, dry_run: bool, skip_bad_rows: bool) -> None:
    """Schedule the posts of a CSV file (columns text, channels, date, time[, media, tags]) in workspace SLUG.

    Rows are checked exactly as the web preview checks them. With any bad row nothing is imported unless
    --skip-bad-rows says to import the others, as confirming the web preview does.
    """
    from saas import accounts
    from saas.posts import csv_import
    from saas.posts.csv_import import CsvError
    from saas.web.bulk import EDITORS
    from tenants import service as tenant_service

    session, tenant = _workspace_session(slug)
    with session:
        author = accounts.user_by_email(session, author_email)
        workspace = tenant_service.find_workspace(author.id, slug) if author else None
        if author is None or workspace is None:
            raise _fail(f"{author_email!r} is not a member of /w/{slug}/.")
        if workspace.role not in EDITORS or workspace.publishes_through_agency:
            raise _fail(f"{author_email!r} may not schedule posts in /w/{slug}/ (editors, admins and owners may).")
        try:
            rows = csv_import.read(csv_file.read_bytes())
        except CsvError as exc:
            raise _fail(str(exc)) from None
        checked = csv_import.check(session, rows, tenant.timezone, author.id)
        session.rollback()
        bad = [row for row in checked if not row.ok]
        for row in bad:
            click.echo(f"line {row.line}: " + " ".join(row.problems), err=True)
        click.echo(f"{len(checked) - len(bad)} row(s) ready, {len(bad)} with problems (times in {tenant.timezone}).")
        if dry_run:
            return
        if bad and not skip_bad_rows:
            raise _fail("Nothing imported: fix the rows above, or pass --skip-bad-rows to import the others.")
        created, skipped = csv_import.import_rows(session, rows, tenant.timezone, author.id)
        session.commit()
    click.echo(f"Imported {len(created)} post(s)" + (f", skipped {skipped} row(s) with problems." if skipped else "."))


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option} {value!r} is not a date and time like 2026-11-26T09:00+01:00.") from None
    if moment.tzinfo is None:
        raise _fail(f"{option} {value!r} needs its time zone, like 2026-11-26T09:00Z or +01:00.")
    return moment


@click.command("resend-webhooks")
@with_appcontext
@click.argument("slug")
@click.option("--endpoint", "endpoint_id", type=int, help="Resend this endpoint's events of a time window...")
@click.option("--since", help="...from this moment (ISO 8601 with its zone)...")
@click.option("--until", help="...to this one (default: now).")
@click.option("--delivery", "delivery_ids", type=int, multiple=True, help="Or resend these deliveries (repeatable).")
def resend_webhooks(
    slug: str, endpoint_id: int | None, since: str | None, until: str | None, delivery_ids: tuple[int, ...]
) -> None:
    """Send webhook events of workspace SLUG again: an endpoint's window, or chosen deliveries.

    A window also sends events the endpoint missed while it was switched off. Receivers see the same
    webhook-id as the first time, so they can tell a resend from a new event.
    """
    from saas.webhooks import service
    from saas.webhooks.service import WebhookError

    if bool(delivery_ids) == (endpoint_id is not None):
        raise click.UsageError("Give either --endpoint with --since, or one or more --delivery.")
    session, _tenant = _workspace_session(slug)
    with session:
        try:
            if delivery_ids:
                count = len(service.replay(session, list(delivery_ids)))
            else:
                start = _moment(since, "--since")
                if start is None:
                    raise click.UsageError("--endpoint needs --since.")
                end = _moment(until, "--until") or datetime.now(UTC)
                assert endpoint_id is not None
                count = service.resend_window(session, endpoint_id, start, end)
        except LookupError as exc:
            raise _fail(f"Not found in /w/{slug}/: {exc.args[0]}.") from None
        except WebhookError as exc:
            raise _fail(exc.message) from None
        session.commit()
    click.echo(f"{count} deliver{'y' if count == 1 else 'ies'} queued; the clock sends them within seconds.")


@click.command("status")
@with_appcontext
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def status(as_json: bool) -> None:
    """Show the dispatcher's last tick, due and in-flight work, leases, RQ queues, failed jobs and workers."""
    from saas.extensions import redis_client
    from saas.status import snapshot

    report = snapshot(redis_client())
    if as_json:
        click.echo(json.dumps(report))
        return
    tick = report["dispatcher"]
    click.echo(
        f"Dispatcher: last tick {tick['last_tick'] or 'never'}"
        + (f" ({tick['seconds_since_tick']} s ago)" if tick["last_tick"] else " (is the clock running?)")
    )
    t = report["targets"]
    click.echo(
        f"Post targets: {t['due']} due, {t['waiting']} waiting, {t['in_flight']} in flight "
        f"({t['expired_leases']} with expired leases), {t['unconfirmed']} unconfirmed"
    )
    w = report["webhook_deliveries"]
    click.echo(
        f"Webhook deliveries: {w['due']} due, {w['retrying']} retrying, {w['in_flight']} in flight "
        f"({w['expired_leases']} with expired leases), {w['gave_up']} gave up; "
        f"endpoints: {w['endpoints_failing']} failing, {w['endpoints_off']} off"
    )
    for name, q in report["queues"].items():
        click.echo(
            f"Queue {name}: {q['queued']} queued, {q['started']} started, {q['scheduled']} scheduled, "
            f"{q['failed']} failed"
        )
    click.echo(f"Workers: {len(report['workers'])}")
    for worker_info in report["workers"]:
        click.echo(f"  {worker_info['name']} {worker_info['state']} on {', '.join(worker_info['queues'])}")
