"""Fixtures for the publishing pipeline: a fake Sandbox network, channels on it, a dispatcher and a worker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from publishers.base import Credentials, Profile
from saas.channels import service as channel_service
from saas.channels.models import Channel
from saas.posts import service as post_service
from saas.posts.models import PostTarget
from saas.publishing.dispatch import dispatch_due_targets, publish_queue
from tenants import tenant_session
from tenants.models import Tenant, User
from tests.factories import app_context
from tests.fakes.network import FakeSandboxNetwork


@pytest.fixture
def network(app: Flask) -> Iterator[FakeSandboxNetwork]:
    """A fake Sandbox network that the app publishes to for this test."""
    with FakeSandboxNetwork(mount="/sandbox") as fake:
        previous = app.config["SANDBOX_BASE_URL"]
        app.config["SANDBOX_BASE_URL"] = fake.base_url
        app.extensions.pop("publishers", None)  # adapters are built from config once per app
        try:
            yield fake
        finally:
            app.config["SANDBOX_BASE_URL"] = previous
            app.extensions.pop("publishers", None)


class Pipeline:
    """Drive the real dispatcher and a real RQ worker (in this process) against the fake network."""

    def __init__(self, app: Flask, redis: Redis, network: FakeSandboxNetwork) -> None:
        self.app, self.redis, self.network = app, redis, network

    def connect(self, tenant: Tenant, handle: str) -> Channel:
        account_id, access, refresh = self.network.add_account(handle)
        with app_context(), tenant_session(tenant.id) as session:
            channel = channel_service.connect(
                session,
                "sandbox",
                Profile(remote_id=account_id, handle=handle, display_name=handle.title()),
                Credentials(
                    access_token=access, refresh_token=refresh, expires_at=self.network.token_expires_at(access)
                ),
            )
            session.commit()
            return channel

    def schedule(
        self,
        tenant: Tenant,
        author: User,
        channels: list[Channel],
        text: str = "Fresh bread at 7",
        *,
        in_seconds: float | None = None,
    ) -> int:
        """Schedule a post (now, or `in_seconds` from now); returns its id."""
        with app_context(), tenant_session(tenant.id) as session:
            when = post_service.Schedule(publish_now=True, local_time=None, timezone="UTC")
            post = post_service.schedule_post(
                session, author_id=author.id, text=text, channel_ids=[c.id for c in channels], schedule=when
            )
            if in_seconds is not None:
                due = sa.func.now() + timedelta(seconds=in_seconds)
                session.execute(
                    sa.update(PostTarget).where(PostTarget.post_id == post.id).values(scheduled_at=due, due_at=due)
                )
            session.commit()
            return post.id

    def dispatch(self):
        with self.app.app_context():
            return dispatch_due_targets(self.redis)

    def work(self) -> None:
        with self.app.app_context():
            worker = SimpleWorker([publish_queue(self.redis)], connection=self.redis, serializer=JSONSerializer)
            worker.work(burst=True)

    def run_once(self):
        report = self.dispatch()
        self.work()
        return report

    def targets(self, tenant: Tenant, post_id: int | None = None) -> list[PostTarget]:
        with app_context(), tenant_session(tenant.id) as session:
            query = sa.select(PostTarget).order_by(PostTarget.id)
            if post_id is not None:
                query = query.where(PostTarget.post_id == post_id)
            targets = list(session.scalars(query))
            for t in targets:
                _ = t.attempts, t.channel  # load before the session closes
            return targets

    def make_due_now(self, tenant: Tenant) -> None:
        """Skip the wait before a retry (what the clock would do after the backoff)."""
        with app_context(), tenant_session(tenant.id) as session:
            session.execute(sa.update(PostTarget).where(PostTarget.state == "scheduled").values(due_at=sa.func.now()))
            session.execute(sa.update(Channel).values(paused_until=None))
            session.commit()


@pytest.fixture
def pipeline(app: Flask, redis_conn: Redis, network: FakeSandboxNetwork) -> Pipeline:
    return Pipeline(app, redis_conn, network)
