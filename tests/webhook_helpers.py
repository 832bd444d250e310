"""Fixtures and helpers for outgoing webhooks: a local receiver, endpoints, and the clock + worker that deliver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from saas.webhooks import service
from saas.webhooks.delivery import dispatch_due_deliveries, webhook_queue
from saas.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from saas.webhooks.service import EndpointInput
from tenants import tenant_session
from tenants.models import Tenant
from tests.factories import app_context
from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as fake:
        yield fake


class Webhooks:
    """Drive the real clock step and a real RQ worker (in this process) for webhook deliveries."""

    def __init__(self, app: Flask, redis: Redis) -> None:
        self.app, self.redis = app, redis

    def add_endpoint(self, tenant: Tenant, url: str, events: tuple[str, ...]) -> tuple[int, str]:
        with app_context(), tenant_session(tenant.id) as session:
            endpoint, secret = service.create(session, EndpointInput(url, events), None)
            session.commit()
            return endpoint.id, secret

    def deliver(self) -> int:
        """One clock pass, then run every job it enqueued. Returns how many deliveries were claimed."""
        with self.app.app_context():
            claimed = dispatch_due_deliveries(self.redis)
            worker = SimpleWorker([webhook_queue(self.redis)], connection=self.redis, serializer=JSONSerializer)
            worker.work(burst=True)
        return claimed

    def events(self, tenant: Tenant) -> list[WebhookEvent]:
        with app_context(), tenant_session(tenant.id) as session:
            return list(session.scalars(sa.select(WebhookEvent).order_by(WebhookEvent.id)))

    def deliveries(self, tenant: Tenant) -> list[WebhookDelivery]:
        with app_context(), tenant_session(tenant.id) as session:
            found = list(session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)))
            for d in found:
                _ = d.attempts, d.event
            return found

    def endpoint(self, tenant: Tenant, endpoint_id: int) -> WebhookEndpoint:
        with app_context(), tenant_session(tenant.id) as session:
            found = session.get(WebhookEndpoint, endpoint_id)
            assert found is not None
            return found

    def update(self, tenant: Tenant, model: Any, *where: Any, **values: Any) -> None:
        """Change rows directly: how tests move the clock (a retry due now, failing for days)."""
        with app_context(), tenant_session(tenant.id) as session:
            session.execute(sa.update(model).where(*where).values(**values))
            session.commit()

    def make_retries_due(self, tenant: Tenant) -> None:
        self.update(tenant, WebhookDelivery, WebhookDelivery.state == "pending", next_attempt_at=datetime.now(UTC))


@pytest.fixture
def webhooks(app: Flask, redis_conn: Redis) -> Webhooks:
    return Webhooks(app, redis_conn)
