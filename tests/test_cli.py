"""Operators' commands (`flask --app wsgi …`) through Flask's CliRunner against the real database and Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from publishers.base import Credentials, Profile
from saas.channels import service as channel_service
from saas.posts.models import Post
from saas.webhooks.models import DeliveryState, WebhookDelivery
from tenants import system_session, tenant_session
from tenants.models import Membership, Role, Tenant, TenantKind, User
from tests import webhook_helpers
from tests.factories import PASSWORD, add_member, app_context, make_user, make_workspace

receiver, webhooks = webhook_helpers.receiver, webhook_helpers.webhooks  # fixtures


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()  # Click keeps stderr apart: errors are checked there

    def run(*args, input=None):
        return runner.invoke(args=list(args), input=input, catch_exceptions=False)

    return run


def _count(model, *where):
    with app_context(), system_session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


# --- create-user / create-tenant --------------------------------------------------------------------------------


def test_create_user_then_a_tenant_they_own(cli, client):
    result = cli(
        "create-user", "Ada@Example.com", "--name", "Ada", "--password", PASSWORD, "--timezone", "Europe/Paris"
    )
    assert result.exit_code == 0, result.output
    assert "Created user ada@example.com." in result.output

    result = cli("create-tenant", "Ada's Bakery", "--owner", "ada@example.com", "--timezone", "Europe/Paris")
    assert result.exit_code == 0, result.output
    assert "/w/ada-s-bakery/" in result.output
    with app_context(), system_session() as session:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == "ada-s-bakery"))
        assert tenant.kind is TenantKind.DIRECT and tenant.timezone == "Europe/Paris"
        role = session.scalar(sa.select(Membership.role).where(Membership.tenant_id == tenant.id))
    assert role is Role.OWNER
    client.log_in("ada@example.com", PASSWORD)  # the password works
    assert client.get("/w/ada-s-bakery/calendar").status_code == 200


def test_create_user_asks_for_the_password_when_not_given(cli):
    result = cli("create-user", "bo@example.com", "--name", "Bo", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert _count(User, User.email == "bo@example.com") == 1


def test_create_user_into_a_workspace_with_a_role(cli):
    tenant, _owner = make_workspace()
    result = cli("create-user", "ed@example.com", "--name", "Ed", "--password", PASSWORD,
                 "--workspace", tenant.slug, "--role", "admin")  # fmt: skip
    assert result.exit_code == 0, result.output
    with app_context(), tenant_session(tenant.id) as session:
        user = session.scalar(sa.select(User).where(User.email == "ed@example.com"))
        assert session.scalar(sa.select(Membership.role).where(Membership.user_id == user.id)) is Role.ADMIN


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("not-an-email", "--name", "X", "--password", PASSWORD), "is not an email address"),
        (("x@example.com", "--name", " ", "--password", PASSWORD), "Give a name"),
        (("x@example.com", "--name", "X", "--password", "short"), "at least"),
        (("x@example.com", "--name", "X", "--password", PASSWORD, "--timezone", "Mars/Olympus"), "Unknown time zone"),
        (("x@example.com", "--name", "X", "--password", PASSWORD, "--workspace", "nowhere"), "No workspace"),
    ],
)
def test_create_user_refuses_bad_input_and_creates_nothing(cli, args, message):
    result = cli("create-user", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert _count(User) == 0


def test_create_user_refuses_an_existing_email(cli):
    make_user("taken@example.com")
    result = cli("create-user", "TAKEN@example.com", "--name", "X", "--password", PASSWORD)
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert _count(User) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Shop", "--owner", "nobody@example.com"), "Create it first with create-user"),
        (("", "--owner", "o@example.com"), "Give the workspace a name"),
        (("Shop", "--owner", "o@example.com", "--timezone", "Nowhere/Land"), "Unknown time zone"),
        (("Shop", "--owner", "o@example.com", "--kind", "client"), "needs --managed-by"),
        (("Shop", "--owner", "o@example.com", "--kind", "client", "--managed-by", "ghost"), "No agency workspace"),
    ],
)
def test_create_tenant_refuses_bad_input_and_creates_nothing(cli, args, message):
    make_user("o@example.com")
    result = cli("create-tenant", *args)
    assert result.exit_code == 1 and message in result.stderr
    assert _count(Tenant) == 0


def test_create_a_client_of_an_agency(cli):
    agency, _ = make_workspace(name="Northwind", kind=TenantKind.AGENCY)
    make_user("client@example.com")
    result = cli("create-tenant", "Bluebell", "--owner", "client@example.com", "--kind", "client",
                 "--managed-by", agency.slug)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    with app_context(), system_session() as session:
        client = session.scalar(sa.select(Tenant).where(Tenant.name == "Bluebell"))
    assert client.kind is TenantKind.CLIENT and client.managed_by_id == agency.id


def test_usage_errors_exit_2(cli):
    assert cli("create-tenant").exit_code == 2
    assert cli("create-tenant", "Shop", "--kind", "galaxy", "--owner", "x@example.com").exit_code == 2


# --- import-csv ----------------------------------------------------------------------------------------------


@pytest.fixture
def shop():
    tenant, owner = make_workspace(timezone="Europe/Paris")
    with app_context(), tenant_session(tenant.id) as session:
        channel_service.connect(session, "sandbox", Profile("acct1", "bakery", "Bakery"), Credentials("t"))
        session.commit()
    return tenant, owner


def _csv(tmp_path, *rows):
    path = tmp_path / "posts.csv"
    path.write_text("text,channels,date,time\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _future(days=10):
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def test_import_csv_schedules_every_good_row(cli, shop, tmp_path):
    tenant, owner = shop
    path = _csv(tmp_path, f"Croissants,@bakery,{_future()},9:30", f"Baguettes,bakery,{_future(11)},10:00")
    result = cli("import-csv", tenant.slug, str(path), "--as", owner.email)
    assert result.exit_code == 0, result.stderr
    assert "2 row(s) ready, 0 with problems (times in Europe/Paris)" in result.output
    assert "Imported 2 post(s)." in result.output
    with app_context(), tenant_session(tenant.id) as session:
        texts = sorted(session.scalars(sa.select(Post.text)))
        local = session.scalar(sa.select(Post.local_time).where(Post.text == "Croissants"))
    assert texts == ["Baguettes", "Croissants"] and local.strftime("%H:%M") == "09:30"


def test_import_csv_with_a_bad_row_prints_it_and_imports_nothing(cli, shop, tmp_path):
    tenant, owner = shop
    path = _csv(
        tmp_path, f"Good,@bakery,{_future()},09:30", f"Bad,@nobody,{_future()},09:30", "Worse,@bakery,someday,9"
    )
    result = cli("import-csv", tenant.slug, str(path), "--as", owner.email)
    assert result.exit_code == 1
    assert "line 3: Unknown channel '@nobody'" in result.stderr
    assert "line 4: Bad date or time 'someday'" in result.stderr
    assert "Nothing imported" in result.stderr
    assert _count(Post) == 0

    dry = cli("import-csv", tenant.slug, str(path), "--as", owner.email, "--dry-run", "--skip-bad-rows")
    assert dry.exit_code == 0 and _count(Post) == 0

    result = cli("import-csv", tenant.slug, str(path), "--as", owner.email, "--skip-bad-rows")
    assert result.exit_code == 0 and "Imported 1 post(s), skipped 2 row(s)" in result.output
    assert _count(Post) == 1


def test_import_csv_refuses_an_unreadable_file_and_people_who_may_not_schedule(cli, shop, tmp_path):
    tenant, owner = shop
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe not utf-8")
    result = cli("import-csv", tenant.slug, str(bad), "--as", owner.email)
    assert result.exit_code == 1 and "not UTF-8" in result.stderr
    header_only = tmp_path / "empty.csv"
    header_only.write_text("text,channels,date,time\n")
    assert "no rows" in cli("import-csv", tenant.slug, str(header_only), "--as", owner.email).stderr

    good = _csv(tmp_path, f"Hi,@bakery,{_future()},09:30")
    viewer = make_user()
    add_member(tenant, viewer, Role.VIEWER)
    result = cli("import-csv", tenant.slug, str(good), "--as", viewer.email)
    assert result.exit_code == 1 and "may not schedule posts" in result.stderr
    outsider = make_user()
    result = cli("import-csv", tenant.slug, str(good), "--as", outsider.email)
    assert result.exit_code == 1 and "is not a member" in result.stderr
    assert cli("import-csv", "no-such-place", str(good), "--as", owner.email).exit_code == 1
    assert _count(Post) == 0


# --- resend-webhooks / status ------------------------------------------------------------------------------


def _test_delivery(tenant, endpoint_id):
    from saas.webhooks import service

    with app_context(), tenant_session(tenant.id) as session:
        delivery = service.send_test(session, endpoint_id)
        session.commit()
        return delivery.id


def test_resend_webhooks_by_delivery_ids(cli, webhooks, receiver):
    tenant, _owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, ("post.published",))
    delivery_id = _test_delivery(tenant, endpoint_id)
    webhooks.deliver()

    result = cli("resend-webhooks", tenant.slug, "--delivery", str(delivery_id))
    assert result.exit_code == 0, result.stderr
    assert "1 delivery queued" in result.output
    webhooks.deliver()
    first, again = receiver.received
    assert first.header("webhook-id") == again.header("webhook-id")

    other, _ = make_workspace()
    result = cli("resend-webhooks", other.slug, "--delivery", str(delivery_id))  # another tenant's id
    assert result.exit_code == 1 and "Not found" in result.stderr


def test_resend_webhooks_by_window_includes_what_was_missed_while_off(cli, webhooks, receiver, app):
    from saas.posts import service as post_service
    from saas.webhooks import service

    tenant, owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, ("post.scheduled",))
    # A second endpoint keeps events being recorded while the first one is off.
    webhooks.add_endpoint(tenant, "http://127.0.0.1:9/elsewhere", ("post.scheduled",))
    with app_context(), tenant_session(tenant.id) as session:
        service.set_enabled(session, endpoint_id, False)
        channel = channel_service.connect(session, "sandbox", Profile("a", "cafe", "Cafe"), Credentials("t"))
        post_service.schedule_post(
            session, author_id=owner.id, text="While you were away", channel_ids=[channel.id],
            schedule=post_service.Schedule(publish_now=True, local_time=None, timezone="UTC"),
        )  # fmt: skip
        session.commit()

    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    refused = cli("resend-webhooks", tenant.slug, "--endpoint", str(endpoint_id), "--since", since)
    assert refused.exit_code == 1 and "Switch the endpoint on first" in refused.stderr
    with app_context(), tenant_session(tenant.id) as session:
        service.set_enabled(session, endpoint_id, True)
        session.commit()
    result = cli("resend-webhooks", tenant.slug, "--endpoint", str(endpoint_id), "--since", since)
    assert result.exit_code == 0, result.stderr
    assert "1 delivery queued" in result.output
    webhooks.deliver()
    [request] = receiver.received
    assert json.loads(request.body)["data"]["text"] == "While you were away"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "Give either --endpoint"),
        (("--endpoint", "1", "--delivery", "1"), 2, "Give either --endpoint"),
        (("--endpoint", "1"), 2, "--endpoint needs --since"),
        (("--endpoint", "1", "--since", "yesterday"), 1, "is not a date and time"),
        (("--endpoint", "1", "--since", "2026-11-01T00:00"), 1, "needs its time zone"),
        (("--endpoint", "999", "--since", "2026-11-01T00:00Z"), 1, "Not found"),
    ],
)
def test_resend_webhooks_refuses_bad_input(cli, args, code, message):
    tenant, _ = make_workspace()
    result = cli("resend-webhooks", tenant.slug, *args)
    assert result.exit_code == code
    assert message in result.stderr


def test_status_reports_due_work_queues_and_failed_jobs(cli, webhooks, receiver, app, redis_conn):
    from saas import dispatcher
    from saas.webhooks.delivery import webhook_queue

    tenant, _owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, ("post.published",))
    _test_delivery(tenant, endpoint_id)
    dispatcher.record_tick(redis_conn, datetime.now(UTC))
    webhook_queue(redis_conn).enqueue("saas.webhooks.delivery.deliver", 1, 1, "x")

    result = cli("status")
    assert result.exit_code == 0, result.stderr
    assert "Dispatcher: last tick" in result.output and "s ago" in result.output
    assert "Webhook deliveries: 1 due" in result.output
    assert "Queue webhooks: 1 queued" in result.output
    assert "Workers: 0" in result.output

    report = json.loads(cli("status", "--json").output)
    assert report["webhook_deliveries"]["due"] == 1
    assert report["queues"]["webhooks"]["queued"] == 1
    assert report["targets"]["due"] == 0 and report["workers"] == []
    assert set(report["queues"]) == {"publish", "default", "webhooks"}


def test_status_counts_failed_jobs_and_expired_leases(cli, webhooks, receiver, app, redis_conn):
    tenant, _owner = make_workspace()
    endpoint_id, _ = webhooks.add_endpoint(tenant, receiver.url, ("post.published",))
    _test_delivery(tenant, endpoint_id)
    webhooks.update(tenant, WebhookDelivery, WebhookDelivery.id > 0, state=DeliveryState.DELIVERING,
                    claimed_until=datetime.now(UTC) - timedelta(minutes=1))  # fmt: skip
    from saas.webhooks.delivery import webhook_queue

    job = webhook_queue(redis_conn).enqueue("saas.webhooks.no_such_function")
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    with app.app_context():
        SimpleWorker([webhook_queue(redis_conn)], connection=redis_conn, serializer=JSONSerializer).work(burst=True)
    assert job.get_status(refresh=True) == "failed"

    report = json.loads(cli("status", "--json").output)
    assert report["webhook_deliveries"]["expired_leases"] == 1
    assert report["queues"]["webhooks"]["failed"] == 1
    assert report["dispatcher"]["last_tick"] is None
    assert "never (is the clock running?)" in cli("status").output


def test_rotate_keys_reseals_webhook_secrets(cli, app, webhooks, receiver):
    from saas.crypto import new_key

    tenant, _ = make_workspace()
    endpoint_id, secret = webhooks.add_endpoint(tenant, receiver.url, ("post.published",))
    before = webhooks.endpoint(tenant, endpoint_id).secret_sealed
    old_keys = app.config["ENCRYPTION_KEYS"]
    app.config["ENCRYPTION_KEYS"] = f"{new_key()},{old_keys}"
    app.extensions.pop("keyring", None)
    try:
        result = cli("rotate-keys")
        assert result.exit_code == 0 and "Re-sealed 1 value(s)" in result.output
        after = webhooks.endpoint(tenant, endpoint_id)
        assert after.secret_sealed != before
        from saas.webhooks import service

        with app_context():
            assert service.secret_of(after) == secret
    finally:
        app.config["ENCRYPTION_KEYS"] = old_keys
        app.extensions.pop("keyring", None)
