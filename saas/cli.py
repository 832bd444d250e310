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
