"""Outgoing webhooks: signed with the endpoint's secret, retried with backoff, logged, replayable, switched off
after days of failure; managed by owners and admins on the workspace's settings."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from saas.notifications.models import Notification
from saas.webhooks import signing
from saas.webhooks.delivery import RETRY_SCHEDULE
from saas.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint, WebhookEvent
from saas.webhooks.signing import SignatureError
from tenants import tenant_session
from tenants.models import AuditEntry, Role
from tests import webhook_helpers
from tests.factories import PASSWORD, add_member, app_context, make_user, make_workspace

receiver, webhooks = webhook_helpers.receiver, webhook_helpers.webhooks  # fixtures

EVENTS = ("post.published", "post.failed")


def _test_event(tenant, endpoint_id):
    from saas.webhooks import service

    with app_context(), tenant_session(tenant.id) as session:
        delivery = service.send_test(session, endpoint_id)
        session.commit()
        return delivery.id


def test_delivery_is_signed_and_verifies_only_untampered_and_fresh(webhooks, receiver):
    tenant, _owner = make_workspace()
    endpoint_id, secret = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    _test_event(tenant, endpoint_id)

    assert webhooks.deliver() == 1

    [request] = receiver.received
    assert secret.startswith("whsec_")
    signing.verify(secret, request.headers, request.body)  # passes
    body = json.loads(request.body)
    assert body["type"] == "webhook.test" and body["data"]["endpoint_id"] == endpoint_id
    assert re.fullmatch(r"msg_[0-9a-f]{32}", request.header("webhook-id"))
    with pytest.raises(SignatureError, match="no matching signature"):
        signing.verify(secret, request.headers, request.body.replace(b"webhook.test", b"post.published"))
    with pytest.raises(SignatureError, match="no matching signature"):
        signing.verify(signing.new_secret(), request.headers, request.body)
    stamp = int(request.header("webhook-timestamp"))
    with pytest.raises(SignatureError, match="too old"):
        signing.verify(secret, request.headers, request.body, now=stamp + signing.TOLERANCE_SECONDS + 1)
    forged = {**request.headers, "webhook-timestamp": str(stamp + 1)}  # a fresher stamp does not carry the signature
    with pytest.raises(SignatureError):
        signing.verify(secret, forged, request.body, now=stamp + 1)


def test_a_500_is_retried_with_backoff_then_succeeds(webhooks, receiver):
    tenant, _owner = make_workspace()
    endpoint_id, _secret = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    receiver.controls.add_fault("status", method="POST", status=500, body={"error": "database down"})
    _test_event(tenant, endpoint_id)

    before = datetime.now(UTC)
    webhooks.deliver()
    [delivery] = webhooks.deliveries(tenant)
    assert delivery.state is DeliveryState.PENDING and delivery.attempt_count == 1
    wait = delivery.next_attempt_at - before
    assert RETRY_SCHEDULE[0] * 0.8 <= wait <= RETRY_SCHEDULE[0] * 1.2 + timedelta(seconds=2)
    [attempt] = delivery.attempts
    assert attempt.status_code == 500 and not attempt.succeeded and "database down" in attempt.response_snippet
    assert webhooks.endpoint(tenant, endpoint_id).failing_since is not None
    assert webhooks.deliver() == 0  # not due yet: nothing is sent before the backoff

    webhooks.make_retries_due(tenant)
    webhooks.deliver()
    [delivery] = webhooks.deliveries(tenant)
    assert delivery.state is DeliveryState.SUCCEEDED
    assert [(a.attempt_no, a.status_code, a.succeeded) for a in delivery.attempts] == [(1, 500, False), (2, 200, True)]
    assert len(receiver.received) == 1
    endpoint = webhooks.endpoint(tenant, endpoint_id)
    assert endpoint.failing_since is None and endpoint.last_status_code == 200


def test_a_refused_connection_is_logged_with_its_error(webhooks, receiver):
    tenant, _owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    _test_event(tenant, endpoint_id)
    with receiver.outage():
        webhooks.deliver()
    [delivery] = webhooks.deliveries(tenant)
    [attempt] = delivery.attempts
    assert attempt.status_code is None and attempt.error.startswith("Could not connect")
    assert delivery.state is DeliveryState.PENDING


def test_a_delivery_whose_worker_died_is_claimed_again_after_its_lease(webhooks, receiver, app, redis_conn):
    tenant, _owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    _test_event(tenant, endpoint_id)
    from saas.webhooks.delivery import dispatch_due_deliveries, webhook_queue

    with app.app_context():
        assert dispatch_due_deliveries(redis_conn) == 1
    webhook_queue(redis_conn).empty()  # the job is lost with its worker
    webhooks.update(tenant, WebhookDelivery, WebhookDelivery.state == "delivering",
                    claimed_until=datetime.now(UTC) - timedelta(seconds=1))  # fmt: skip

    assert webhooks.deliver() == 1
    [delivery] = webhooks.deliveries(tenant)
    assert delivery.state is DeliveryState.SUCCEEDED and len(receiver.received) == 1


def test_giving_up_after_the_schedule_leaves_the_delivery_failed(webhooks, receiver):
    tenant, _owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    receiver.controls.add_fault("status", method="POST", status=503, times=len(RETRY_SCHEDULE) + 1)
    _test_event(tenant, endpoint_id)
    for _ in range(len(RETRY_SCHEDULE) + 1):
        webhooks.deliver()
        webhooks.make_retries_due(tenant)
    [delivery] = webhooks.deliveries(tenant)
    assert delivery.state is DeliveryState.FAILED
    assert len(delivery.attempts) == len(RETRY_SCHEDULE) + 1
    assert webhooks.deliver() == 0


def test_failing_for_days_switches_the_endpoint_off_and_tells_the_owners_once(webhooks, receiver, outbox):
    tenant, owner = make_workspace()
    admin = make_user()
    add_member(tenant, admin, Role.ADMIN)
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    three_days_ago = datetime.now(UTC) - timedelta(days=3, minutes=1)
    webhooks.update(tenant, WebhookEndpoint, WebhookEndpoint.id == endpoint_id, failing_since=three_days_ago)
    receiver.controls.add_fault("status", method="POST", status=500, times=10)
    _test_event(tenant, endpoint_id)
    _test_event(tenant, endpoint_id)

    webhooks.deliver()

    endpoint = webhooks.endpoint(tenant, endpoint_id)
    assert not endpoint.enabled
    assert "failed for 3 days" in endpoint.disabled_reason
    with app_context(), tenant_session(tenant.id) as session:
        notes = session.execute(sa.select(Notification.user_id, Notification.title)).all()
    assert notes == [(owner.id, "A webhook endpoint was switched off")]
    [mail] = outbox.to(owner.email)
    assert receiver.url in mail.get_content()
    assert outbox.to(admin.email) == []
    webhooks.make_retries_due(tenant)
    assert webhooks.deliver() == 0  # nothing is sent to an endpoint that is off


def test_failing_for_less_than_the_limit_keeps_the_endpoint_on(webhooks, receiver):
    tenant, _owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    webhooks.update(tenant, WebhookEndpoint, WebhookEndpoint.id == endpoint_id,
                    failing_since=datetime.now(UTC) - timedelta(days=2, hours=23))  # fmt: skip
    receiver.controls.add_fault("status", method="POST", status=500)
    _test_event(tenant, endpoint_id)
    webhooks.deliver()
    assert webhooks.endpoint(tenant, endpoint_id).enabled


def test_rotated_secret_signs_beside_the_old_one_for_a_day(webhooks, receiver):
    from saas.webhooks import service

    tenant, _owner = make_workspace()
    endpoint_id, old = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    with app_context(), tenant_session(tenant.id) as session:
        _endpoint, new = service.rotate_secret(session, endpoint_id)
        session.commit()
    _test_event(tenant, endpoint_id)
    webhooks.deliver()
    [request] = receiver.received
    assert len(request.header("webhook-signature").split()) == 2
    signing.verify(new, request.headers, request.body)
    signing.verify(old, request.headers, request.body)

    webhooks.update(tenant, WebhookEndpoint, WebhookEndpoint.id == endpoint_id,
                    previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1))  # fmt: skip
    _test_event(tenant, endpoint_id)
    webhooks.deliver()
    latest = receiver.received[-1]
    signing.verify(new, latest.headers, latest.body)
    with pytest.raises(SignatureError):
        signing.verify(old, latest.headers, latest.body)


# --- the settings pages -----------------------------------------------------------------------------------------


def _logged_in(client, role=Role.OWNER):
    tenant, user = make_workspace(role)
    client.log_in(user.email, PASSWORD)
    return tenant, user


def _add(client, tenant, **data):
    base = f"/w/{tenant.slug}/settings/webhooks"
    return client.submit(f"{base}/new", data, page=f"{base}/new")


def test_owner_adds_an_endpoint_and_sees_the_secret_once(client, webhooks, receiver):
    tenant, _owner = _logged_in(client)
    page = client.get(f"/w/{tenant.slug}/settings/webhooks")
    assert b"No webhook endpoints yet" in page.data

    response = _add(client, tenant, url=receiver.url, events=["post.published", "approval.approved"])

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    secret = re.search(r"whsec_[A-Za-z0-9+/=]+", response.get_data(as_text=True)).group(0)
    [endpoint] = [webhooks.endpoint(tenant, 1)]
    assert endpoint.url == receiver.url and endpoint.events == ["post.published", "approval.approved"]
    assert secret not in endpoint.secret_sealed
    listing = client.get(f"/w/{tenant.slug}/settings/webhooks").get_data(as_text=True)
    assert receiver.url in listing and "Nothing sent yet" in listing and secret not in listing
    detail = client.get(f"/w/{tenant.slug}/settings/webhooks/1").get_data(as_text=True)
    assert secret not in detail
    revealed = client.submit(f"/w/{tenant.slug}/settings/webhooks/1/secret", page="/account")
    assert secret in revealed.get_data(as_text=True)
    with app_context(), tenant_session(tenant.id) as session:
        actions = list(session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["Added a webhook endpoint", "Revealed a webhook signing secret"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "", "events": ["post.published"]}, "Enter the address that should receive the events."),
        ({"url": "   ", "events": ["post.published"]}, "Enter the address that should receive the events."),
        ({"url": "not a url", "events": ["post.published"]}, "Enter a full address starting with"),
        ({"url": "ftp://example.com/x", "events": ["post.published"]}, "Enter a full address starting with"),
        ({"url": "https://:80/x", "events": ["post.published"]}, "Enter a full address starting with"),
        ({"url": "https://example.com:port/x", "events": ["post.published"]}, "Enter a full address like"),
        ({"url": "https://user:pw@example.com/x", "events": ["post.published"]}, "Leave the user name and password"),
        ({"url": "https://example.com/" + "a" * 2001, "events": ["post.published"]}, "Use at most 2000 characters."),
        ({"url": "https://example.com/x"}, "Choose at least one event to send."),
        ({"url": "https://example.com/x", "events": ["post.deleted"]}, "Unknown event &#39;post.deleted&#39;"),
        ({"url": "https://example.com/x", "events": ["post.published"], "description": "d" * 201},
         "Use at most 200 characters."),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_a_clear_message_and_saves_nothing(client, data, message):
    tenant, _owner = _logged_in(client)
    response = _add(client, tenant, **data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app_context(), tenant_session(tenant.id) as session:
        assert session.scalar(sa.select(sa.func.count(WebhookEndpoint.id))) == 0


def test_plain_http_is_refused_when_the_app_is_served_over_https(client, app):
    tenant, _owner = _logged_in(client)
    app.config["PUBLIC_BASE_URL"] = "https://multipost.example"
    try:
        response = _add(client, tenant, url="http://example.com/hook", events=["post.published"])
        assert response.status_code == 422
        assert "starting with https://," in response.get_data(as_text=True)
        assert _add(client, tenant, url="https://example.com/hook", events=["post.published"]).status_code == 200
    finally:
        app.config["PUBLIC_BASE_URL"] = "http://localhost"


def test_edit_switch_off_on_test_and_delete(client, webhooks, receiver):
    tenant, _owner = _logged_in(client)
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    base = f"/w/{tenant.slug}/settings/webhooks/{endpoint_id}"

    bad = client.submit(base, {"url": receiver.url, "events": []}, page=base)
    assert bad.status_code == 422 and "Choose at least one event" in bad.get_data(as_text=True)
    assert client.submit(base, {"url": receiver.url, "events": ["post.scheduled"], "description": "CRM"},
                         page=base).status_code == 302  # fmt: skip
    assert webhooks.endpoint(tenant, endpoint_id).events == ["post.scheduled"]

    client.submit(f"{base}/disable", page=base)
    assert not webhooks.endpoint(tenant, endpoint_id).enabled
    refused = client.submit(f"{base}/test", page=base, follow_redirects=True)
    assert "Switch the endpoint on first" in refused.get_data(as_text=True)
    client.submit(f"{base}/enable", page=base)
    client.submit(f"{base}/test", page=base)
    webhooks.deliver()
    log = client.get(base).get_data(as_text=True)
    assert "webhook.test" in log and "Delivered" in log and "HTTP 200" in log

    client.submit(f"{base}/delete", page=base)
    with app_context(), tenant_session(tenant.id) as session:
        assert session.scalar(sa.select(sa.func.count(WebhookEndpoint.id))) == 0
        assert session.scalar(sa.select(sa.func.count(WebhookDelivery.id))) == 0


def test_replay_from_the_log_sends_the_same_message_again(client, webhooks, receiver):
    tenant, _owner = _logged_in(client)
    endpoint_id, secret = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    _test_event(tenant, endpoint_id)
    webhooks.deliver()
    [delivery] = webhooks.deliveries(tenant)
    base = f"/w/{tenant.slug}/settings/webhooks/{endpoint_id}"

    client.submit(f"{base}/deliveries/{delivery.id}/replay", page=base)
    webhooks.deliver()

    first, again = receiver.received
    assert first.header("webhook-id") == again.header("webhook-id") and first.body == again.body
    signing.verify(secret, again.headers, again.body)
    [delivery] = webhooks.deliveries(tenant)
    assert [a.replay for a in delivery.attempts] == [False, True]
    assert "(resent)" in client.get(base).get_data(as_text=True)
    # While it is on its way it cannot be replayed twice.
    client.submit(f"{base}/deliveries/{delivery.id}/replay", page=base)
    again = client.submit(f"{base}/deliveries/{delivery.id}/replay", page=base, follow_redirects=True)
    assert "already on its way" in again.get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.EDITOR, Role.REVIEWER, Role.VIEWER])
def test_only_owners_and_admins_manage_webhooks(client, webhooks, receiver, role):
    tenant, _user = _logged_in(client, role)
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    base = f"/w/{tenant.slug}/settings/webhooks"
    assert client.get(base).status_code == 403
    assert client.submit(f"{base}/{endpoint_id}/secret", page="/account").status_code == 403
    assert client.submit(f"{base}/{endpoint_id}/delete", page="/account").status_code == 403
    assert webhooks.endpoint(tenant, endpoint_id).enabled


def test_admin_manages_webhooks(client, receiver):
    tenant, _admin = _logged_in(client, Role.ADMIN)
    assert _add(client, tenant, url=receiver.url, events=["post.failed"]).status_code == 200


def test_a_workspace_without_endpoints_stores_no_events(webhooks, receiver):
    from saas.posts import service as post_service

    tenant, owner = make_workspace()
    other, _ = make_workspace()
    webhooks.add_endpoint(other, receiver.url, ("post.scheduled",))
    with app_context(), tenant_session(tenant.id) as session:
        from publishers.base import Credentials, Profile
        from saas.channels import service as channel_service

        channel = channel_service.connect(session, "sandbox", Profile("a1", "quiet", "Quiet"), Credentials("t"))
        post_service.schedule_post(
            session, author_id=owner.id, text="Hello", channel_ids=[channel.id],
            schedule=post_service.Schedule(publish_now=True, local_time=None, timezone="UTC"),
        )  # fmt: skip
        session.commit()
    assert webhooks.events(tenant) == []
    with app_context(), tenant_session(other.id) as session:
        assert session.scalar(sa.select(sa.func.count(WebhookEvent.id))) == 0  # nothing leaks across tenants


def test_the_readme_verification_code_accepts_our_requests_and_refuses_tampered_ones(webhooks, receiver):
    from saas.config import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(import base64, hashlib, hmac, time\n.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(snippet, namespace)  # the receiver code people copy must work against what we send
    tenant, _owner = make_workspace()
    endpoint_id, secret = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    _test_event(tenant, endpoint_id)
    webhooks.deliver()
    [request] = receiver.received
    assert namespace["verify"](secret, request.headers, request.body)
    assert not namespace["verify"](secret, request.headers, request.body + b" ")


def test_a_deliver_job_naming_another_tenants_delivery_does_nothing(webhooks, receiver, app, redis_conn):
    from saas.webhooks.delivery import deliver, dispatch_due_deliveries

    victim, _ = make_workspace()
    intruder, _ = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(victim, receiver.url, EVENTS)
    delivery_id = _test_event(victim, endpoint_id)
    with app.app_context():
        dispatch_due_deliveries(redis_conn)
        [delivery] = webhooks.deliveries(victim)
        assert deliver(intruder.id, delivery_id, delivery.claim_token) == "not_ours"
    assert receiver.received == []
    [after] = webhooks.deliveries(victim)
    assert after.state is DeliveryState.DELIVERING and after.attempts == []


def test_an_unreadable_secret_fails_the_attempt_and_sends_nothing_unsigned(webhooks, receiver):
    tenant, _owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    other_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    sealed_for_other = webhooks.endpoint(tenant, other_id).secret_sealed
    webhooks.update(tenant, WebhookEndpoint, WebhookEndpoint.id == endpoint_id, secret_sealed=sealed_for_other)
    _test_event(tenant, endpoint_id)
    webhooks.deliver()
    [delivery] = webhooks.deliveries(tenant)
    [attempt] = delivery.attempts
    assert "signing secret cannot be read" in attempt.error and delivery.state is DeliveryState.PENDING
    assert receiver.received == []


def test_an_endpoint_switched_off_after_the_claim_is_not_sent_to(webhooks, receiver, app, redis_conn):
    from saas.webhooks import service
    from saas.webhooks.delivery import dispatch_due_deliveries, webhook_queue

    tenant, _owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    _test_event(tenant, endpoint_id)
    with app.app_context():
        assert dispatch_due_deliveries(redis_conn) == 1
    with app_context(), tenant_session(tenant.id) as session:
        service.set_enabled(session, endpoint_id, False)
        session.commit()
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    with app.app_context():
        SimpleWorker([webhook_queue(redis_conn)], connection=redis_conn, serializer=JSONSerializer).work(burst=True)
    assert receiver.received == []
    [delivery] = webhooks.deliveries(tenant)
    assert delivery.state is DeliveryState.PENDING and delivery.attempts == []
    with app_context(), tenant_session(tenant.id) as session:
        service.set_enabled(session, endpoint_id, True)
        session.commit()
    webhooks.deliver()
    assert len(receiver.received) == 1


def test_the_log_keeps_thirty_days_and_never_drops_a_delivery_still_on_its_way(webhooks, receiver, app):
    from saas.webhooks.delivery import prune_old_events

    tenant, _owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, EVENTS)
    old_done, old_waiting, recent = (_test_event(tenant, endpoint_id) for _ in range(3))
    webhooks.deliver()
    long_ago = datetime.now(UTC) - timedelta(days=31)
    with app_context(), tenant_session(tenant.id) as session:
        event_of = dict(session.execute(sa.select(WebhookDelivery.id, WebhookDelivery.event_id)).all())
    webhooks.update(tenant, WebhookEvent, WebhookEvent.id.in_([event_of[old_done], event_of[old_waiting]]),
                    created_at=long_ago)  # fmt: skip
    webhooks.update(tenant, WebhookDelivery, WebhookDelivery.id == old_waiting, state=DeliveryState.PENDING)

    with app.app_context():
        assert prune_old_events() == 1
    assert sorted(d.id for d in webhooks.deliveries(tenant)) == [old_waiting, recent]
