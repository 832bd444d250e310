"""The billing page, Checkout and its return page, the Portal, and agency billing; other workspaces get 404."""

from __future__ import annotations

import re

import sqlalchemy as sa

from billing import subscriptions
from billing.models import SubscriptionStatus
from saas import entitlements
from tenants import system_session, tenant_session
from tenants.models import Role, TenantKind
from tests.billing.conftest import subscribe, subscription_row
from tests.factories import PASSWORD, add_member, app_context, make_tenant, make_workspace


def test_billing_page_shows_plan_status_renewal_usage_and_invoices(client, stripe):
    tenant, owner = make_workspace(timezone="Europe/Berlin")
    client.log_in(owner.email, PASSWORD)
    page = client.get(f"/w/{tenant.slug}/billing").get_data(as_text=True)
    assert "Free trial" in page and "Choose Pro" in page and "Channels: 0 of 3" in page

    subscribe(client, stripe, tenant)

    page = client.get(f"/w/{tenant.slug}/billing").get_data(as_text=True)
    assert re.search(r'id="billing-plan">Pro<', page)
    assert re.search(r'id="billing-status"><span class="state state-published">Active<', page)
    assert "Renews" in page
    assert "Channels: 0 of 10" in page and "Scheduled posts this month: 0 (unlimited)" in page
    assert "Seats (owners, admins, editors; reviewers and viewers are free): 1 of 5" in page
    assert "FAKE-0001" in page and "29.00 EUR" in page and "Paid" in page
    assert "UTC" in page  # every time names its zone
    assert "Manage payment method, invoices or cancel" in page
    assert "Choose Pro" not in page


def test_return_page_records_the_subscription_even_before_its_webhook(client, stripe):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    stripe.hold = True  # no webhook arrives
    subscribe(client, stripe, tenant)
    row = subscription_row(tenant.id)
    assert (row.plan, row.status) == ("pro", SubscriptionStatus.ACTIVE)
    page = client.get(f"/w/{tenant.slug}/billing").get_data(as_text=True)
    assert "Thank you: this workspace is on Pro (active)." in page


def test_portal_session_goes_to_stripe_for_this_workspace_only(client, stripe):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    subscribe(client, stripe, tenant)

    response = client.submit(f"/w/{tenant.slug}/billing/portal", page=f"/w/{tenant.slug}/billing")

    assert response.status_code == 303
    portal_id = re.search(r"/portal/(bps_\w+)$", response.headers["Location"]).group(1)
    assert stripe.portal_sessions[portal_id]["customer"] == subscription_row(tenant.id).stripe_customer_id


def test_editors_cannot_buy_or_open_the_portal(client, stripe):
    tenant, _owner = make_workspace()
    editor_tenant, editor = tenant, make_workspace()[1]
    add_member(editor_tenant, editor, Role.EDITOR)
    client.log_in(editor.email, PASSWORD)
    assert client.submit(f"/w/{tenant.slug}/billing/checkout", {"plan": "pro"}).status_code == 403
    assert client.submit(f"/w/{tenant.slug}/billing/portal").status_code == 403


def test_another_workspace_billing_pages_and_portal_answer_404(client, stripe):
    victim, victim_owner = make_workspace(name="Victim Co")
    client.log_in(victim_owner.email, PASSWORD)
    subscribe(client, stripe, victim)
    victim_checkout = next(iter(stripe.checkout_sessions))
    client.post("/logout", data={"csrf_token": client.csrf_token(f"/w/{victim.slug}/billing")})
    portals_before = len(stripe.portal_sessions)

    own, intruder = make_workspace(name="Intruder Co")
    client.log_in(intruder.email, PASSWORD)
    for path in ("/billing", f"/billing/return?session_id={victim_checkout}"):
        response = client.get(f"/w/{victim.slug}{path}")
        assert response.status_code == 404 and b"Victim Co" not in response.data
    for path in ("/billing/portal", "/billing/checkout"):
        assert client.submit(f"/w/{victim.slug}{path}", {"plan": "pro"}).status_code == 404
    # Even through its own workspace, the intruder cannot claim the victim's Checkout session.
    assert client.get(f"/w/{own.slug}/billing/return?session_id={victim_checkout}").status_code == 404
    assert len(stripe.portal_sessions) == portals_before
    assert subscription_row(own.id) is None or subscription_row(own.id).stripe_subscription_id is None


def test_agency_quantity_follows_its_managed_clients(client, stripe):
    agency, owner = make_workspace(name="Northwind", kind=TenantKind.AGENCY)
    make_tenant("Bluebell", kind=TenantKind.CLIENT, managed_by=agency)
    make_tenant("Harbor", kind=TenantKind.CLIENT, managed_by=agency)
    client.log_in(owner.email, PASSWORD)
    sub_id = subscribe(client, stripe, agency, plan="agency")
    assert stripe.subscriptions[sub_id]["items"]["data"][0]["quantity"] == 2

    # A third client arrives: the quantity follows, prorated by Stripe.
    third = make_tenant("Copper", kind=TenantKind.CLIENT, managed_by=agency)
    with app_context(), system_session() as session:  # as entitlements.sync_agency_quantity does
        assert subscriptions.sync_agency_quantity(session, entitlements.gateway(), agency.id) == 3
        session.commit()
    update = [e for e in stripe.journal.entries("POST", f"/v1/subscriptions/{sub_id}")][-1]
    assert update.body["items[0][quantity]"] == "3"
    assert update.body["proration_behavior"] == "create_prorations"
    assert stripe.subscriptions[sub_id]["items"]["data"][0]["quantity"] == 3

    # The third client starts paying for itself: the agency is billed for two again.
    third_owner = make_workspace()[1]
    add_member(third, third_owner, Role.OWNER)
    other = client.application.test_client()
    other.log_in(third_owner.email, PASSWORD)
    subscribe(other, stripe, third)  # no explicit sync: the client's new subscription triggers it
    stripe.wait_delivered()
    assert subscription_row(agency.id).quantity == 2
    assert stripe.subscriptions[sub_id]["items"]["data"][0]["quantity"] == 2

    page = client.get(f"/w/{agency.slug}/billing").get_data(as_text=True)
    assert "Billed for</dt><dd>2 managed clients" in page
    rows = re.findall(r"<tr><td>(\w+)</td><td>([^<]+)</td></tr>", page)
    assert rows == [
        ("Bluebell", "Northwind (this agency)"),
        ("Copper", "Pays for itself"),
        ("Harbor", "Northwind (this agency)"),
    ]


def test_a_managed_client_is_covered_by_its_agency(client, stripe):
    agency, agency_owner = make_workspace(name="Northwind", kind=TenantKind.AGENCY)
    client_tenant = make_tenant("Bluebell", kind=TenantKind.CLIENT, managed_by=agency)
    add_member(client_tenant, make_workspace()[1], Role.OWNER)
    client.log_in(agency_owner.email, PASSWORD)
    sub_id = subscribe(client, stripe, agency, plan="agency")
    stripe.set_status(sub_id, "unpaid")
    stripe.wait_delivered()

    with app_context(), tenant_session(client_tenant.id) as session:  # as the client's pages see it
        state = entitlements.state(session, client_tenant.id)
        count = session.scalar(sa.select(sa.func.count()).select_from(sa.table("subscriptions")))
    assert state.covered_by_agency and state.plan.name == "Agency" and count == 1
    assert "Northwind's subscription is unpaid" in state.publishing_problem(entitlements.utcnow())
