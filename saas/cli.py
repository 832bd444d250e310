"""Commands for `flask --app wsgi ...`: the worker, the clock, and the demo seed."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

QUEUES = ("publish", "default")


def init_app(app: Flask) -> None:
    app.cli.add_command(worker)
    app.cli.add_command(clock)
    app.cli.add_command(seed_demo)
    app.cli.add_command(rotate_keys)
    app.cli.add_command(approval_reminders)
    app.cli.add_command(new_encryption_key)
    app.cli.add_command(prune_sessions)
    app.cli.add_command(create_api_token)


@click.command()
@with_appcontext
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker on the publish and default queues."""
    import sqlalchemy.orm as so
    from rq import Queue, SimpleWorker
    from rq.serializers import JSONSerializer

    import publishers
    import saas.publishing.jobs  # noqa: F401  (imported once, not per job)
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
@with_appcontext
def rotate_keys() -> None:
    """Re-encrypt every channel's credentials and two-factor secret with the newest ENCRYPTION_KEYS key."""
    from saas import db
    from saas.channels.service import rotate_keys as rotate
    from saas.identity import twofactor

    click.echo(f"Re-encrypted the credentials of {rotate()} channel(s) with the newest key.")
    with db.new_session() as session:
        secrets = twofactor.rotate_keys(session)
        session.commit()
    click.echo(f"Re-encrypted {secrets} two-factor secret(s) with the newest key.")


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
