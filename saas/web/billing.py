"""Billing pages of a workspace (plan, usage, invoices, Checkout, Portal) and the Stripe webhook endpoint."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from billing import webhooks
from billing.gateway import BadSignature, GatewayError, Invoice
from billing.lifecycle import LIVE, BillingState
from billing.models import Subscription
from billing.plans import choosable
from billing.subscriptions import BillingError, finish_checkout, portal_url, start_checkout
from saas import db, entitlements, mail
from saas.extensions import csrf
from saas.notifications.service import admins, notify
from saas.security import CONTENT_SECURITY_POLICY, TEAM_MANAGERS, require_role
from saas.web.forms import ConfirmForm
from saas.web.reauth import recent_auth_required
from tenants.models import Tenant, TenantKind
from tenants.scoping import system_session, tenant_session

log = logging.getLogger(__name__)

bp = Blueprint("billing", __name__, url_prefix="/billing")
webhook_bp = Blueprint("stripe_webhooks", __name__)

LAPSED = frozenset({"unpaid", "canceled", "incomplete_expired", "paused"})


def init_app(app: Flask) -> None:
    app.register_blueprint(webhook_bp)

    @app.errorhandler(entitlements.LimitReached)
    def limit_reached(exc: entitlements.LimitReached) -> Any:
        # Raised from a service deep inside a flow (a channel's connect callback): the page says why.
        return render_template("billing/limit.html", message=exc.message), 403

    @app.context_processor
    def billing_banner() -> dict[str, Any]:
        workspace = getattr(g, "workspace", None) if has_request_context() else None
        if workspace is None or not current_user.is_authenticated or not current_app.config["BILLING_ENABLED"]:
            return {}
        state = entitlements.state(db.session(), workspace.tenant_id)
        now = entitlements.utcnow()
        return {"billing_state": state, "billing_in_grace": state.in_grace(now),
                "billing_problem": state.publishing_problem(now)}  # fmt: skip


# Stripe's hosted pages. Browsers apply the page's form-action to where a form's POST redirects, so the
# billing page must name them for "Choose a plan" and "Manage" to reach Checkout and the Portal.
STRIPE_PAGES = "https://checkout.stripe.com https://billing.stripe.com"


@bp.after_request
def _allow_stripe_redirects(response: Any) -> Any:
    base = current_app.config["STRIPE_API_BASE"]
    origins = STRIPE_PAGES if base == "https://api.stripe.com" else "{0.scheme}://{0.netloc}".format(urlsplit(base))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {origins}"
    )
    return response


def _enabled_or_404() -> None:
    if not current_app.config["BILLING_ENABLED"]:
        abort(404)


@bp.get("")
def index() -> Any:
    session = db.session()
    tenant_id = g.workspace.tenant_id
    state = entitlements.state(session, tenant_id)
    invoices, invoices_error = _invoices(state)
    plans = choosable(entitlements.settings().plans, g.workspace.kind.value)
    own_live = session.scalar(
        sa.select(Subscription.id).where(Subscription.tenant_id == tenant_id, Subscription.status.in_(list(LIVE)))
    )
    return render_template(
        "billing/index.html",
        state=state,
        usage=entitlements.usage(session, tenant_id),
        limits=state.plan.limits,
        invoices=invoices,
        invoices_error=invoices_error,
        plans=plans if not own_live else [],
        has_own_subscription=bool(own_live),
        clients=_managed_clients(tenant_id) if g.workspace.kind is TenantKind.AGENCY else [],
        can_manage=g.workspace.role in TEAM_MANAGERS,
        confirm=ConfirmForm(formdata=None),
        enabled=current_app.config["BILLING_ENABLED"],
        trial_carries_over=current_app.config["BILLING_TRIAL_CARRIES_OVER"],
        now=entitlements.utcnow(),
    )


def _invoices(state: BillingState) -> tuple[list[Invoice], str | None]:
    """The workspace's own invoices, fresh from Stripe (an agency's clients see none: the agency is billed)."""
    gateway = entitlements.gateway()
    if gateway is None or state.covered_by_agency or not state.stripe_customer_id:
        return [], None
    try:
        return gateway.invoices(state.stripe_customer_id), None
    except GatewayError as exc:
        return [], str(exc)


def _managed_clients(agency_id: int) -> list[tuple[str, bool]]:
    """(name, pays for itself) for every client the agency manages: the console's "who pays" column."""
    rows = db.session.execute(
        sa.select(Tenant.name, Subscription.status)
        .outerjoin(Subscription, Subscription.tenant_id == Tenant.id)
        .where(Tenant.managed_by_id == agency_id)
        .order_by(sa.func.lower(Tenant.name))
    ).all()
    return [(name, status in LIVE) for name, status in rows]


@bp.post("/checkout")
@require_role(*TEAM_MANAGERS)
@recent_auth_required()
def checkout() -> Any:
    _enabled_or_404()
    if not ConfirmForm().validate_on_submit():
        abort(400)
    gateway = entitlements.gateway()
    assert gateway is not None
    base = current_app.config["PUBLIC_BASE_URL"]
    try:
        session = start_checkout(
            db.session(),
            gateway,
            entitlements.settings(),
            tenant_id=g.workspace.tenant_id,
            plan_key=request.form.get("plan", ""),
            email=current_user.email,
            # Stripe fills in {CHECKOUT_SESSION_ID}; url_for would escape the braces.
            success_url=base + url_for("workspace.billing.checkout_return") + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=base + url_for("workspace.billing.index", checkout="canceled"),
            now=entitlements.utcnow(),
        )
    except (BillingError, GatewayError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.billing.index"))
    db.session.commit()  # the Stripe customer, kept whether or not they pay
    return redirect(session.url, 303)


@bp.get("/return")
def checkout_return() -> Any:
    """Back from Checkout: record the subscription now (its webhook may still be on its way) and show it."""
    _enabled_or_404()
    gateway = entitlements.gateway()
    assert gateway is not None
    checkout_id = request.args.get("session_id", "")
    if not checkout_id.startswith("cs_"):
        abort(404)
    try:
        change = finish_checkout(
            db.session(),
            gateway,
            entitlements.settings(),
            tenant_id=g.workspace.tenant_id,
            checkout_id=checkout_id,
            now=entitlements.utcnow(),
        )
    except LookupError:
        abort(404)  # another workspace's checkout
    except GatewayError as exc:
        db.session.rollback()
        flash(f"{exc} Your payment is safe: this page updates once it is confirmed.", "error")
        return redirect(url_for("workspace.billing.index"))
    if change is not None:
        entitlements.release_billing_holds(db.session(), change)
    db.session.commit()
    if change is not None:
        _sync_agency_of(change.payer_tenant_id)
    state = entitlements.state(db.session(), g.workspace.tenant_id)
    if change is None:
        flash("We have not heard from the payment provider yet. This page shows your plan once it confirms.", "info")
    else:
        flash(f"Thank you: this workspace is on {state.plan.name} ({state.status.replace('_', ' ')}).", "success")
    return redirect(url_for("workspace.billing.index"))


@bp.post("/portal")
@require_role(*TEAM_MANAGERS)
@recent_auth_required()
def portal() -> Any:
    """The Stripe Billing Portal: payment method, invoices, cancellation (Stripe asks for confirmation there)."""
    _enabled_or_404()
    if not ConfirmForm().validate_on_submit():
        abort(400)
    gateway = entitlements.gateway()
    assert gateway is not None
    return_url = current_app.config["PUBLIC_BASE_URL"] + url_for("workspace.billing.index")
    try:
        url = portal_url(db.session(), gateway, tenant_id=g.workspace.tenant_id, return_url=return_url)
    except (BillingError, GatewayError) as exc:
        flash(str(exc), "error")
        return redirect(url_for("workspace.billing.index"))
    return redirect(url, 303)


# -- Stripe's webhooks (no workspace, no login, no CSRF token: the signature is the credential)


@webhook_bp.post("/webhooks/stripe")
@csrf.exempt
def stripe_webhook() -> Any:
    gateway = entitlements.gateway()
    if gateway is None:
        abort(404)
    payload = request.get_data(cache=False)  # the raw bytes: the signature covers exactly these
    with system_session() as session:  # an event names its subscription, not a workspace
        try:
            handled = webhooks.handle_event(
                session,
                gateway,
                entitlements.settings(),
                payload,
                request.headers.get("Stripe-Signature"),
                entitlements.utcnow(),
                on_change=entitlements.release_billing_holds,
            )
        except BadSignature as exc:
            log.warning("Stripe webhook refused: %s", exc)
            return {"error": "invalid signature"}, 400
        except GatewayError:
            session.rollback()
            return {"error": "could not fetch the subscription; retry later"}, 503  # Stripe retries
        session.commit()
    _tell_people(handled)
    if handled.change is not None:
        _sync_agency_of(handled.change.payer_tenant_id)
    return {"received": True, "outcome": handled.outcome}, 200


def _sync_agency_of(tenant_id: int) -> None:
    """A managed client started or stopped paying for itself: its agency's quantity follows."""
    agency_id = db.session.scalar(sa.select(Tenant.managed_by_id).where(Tenant.id == tenant_id))
    if agency_id is None:
        return
    try:
        entitlements.sync_agency_quantity(agency_id)
    except GatewayError:
        # The client's own change is recorded; the agency's count is corrected on the next sync.
        log.exception("could not update the quantity of agency %s", agency_id)


NOTICES = {
    "past_due": (
        "A payment failed: update the payment method",
        "We could not charge the card for {workspace}'s {plan} subscription. Publishing continues until "
        "{grace_end}; after that, scheduled posts are held (never deleted) until the invoice is paid. "
        "Update the payment method from the Billing page.",
    ),
    "lapsed": (
        "Publishing is paused for billing",
        "{problem} Scheduled posts are kept and marked blocked; nothing is deleted.",
    ),
    "restored": (
        "Payment received: publishing is back on",
        "{workspace}'s {plan} subscription is {status}. Posts due while publishing was paused are waiting on "
        "their pages for you to reschedule; nothing is sent in a burst.",
    ),
    "trial_will_end": (
        "Your free trial ends soon",
        "{workspace}'s trial of {plan} ends on {trial_end}. The card on file is charged then; change or cancel "
        "the plan from the Billing page before that if you wish.",
    ),
}


def _notice(handled: webhooks.Handled) -> str | None:
    change = handled.change
    if handled.type == "customer.subscription.trial_will_end":
        return "trial_will_end"
    if change is None or change.before == change.after:
        return None
    if change.after == "past_due":
        return "past_due"
    if change.after in LAPSED:
        return "lapsed"
    if change.after == "active" and change.before in ("past_due", *LAPSED):
        return "restored"
    return None


def _tell_people(handled: webhooks.Handled) -> None:
    """Email and notify the payer's owners and admins about a change they must know of, once per event."""
    kind = _notice(handled)
    if kind is None or handled.change is None:
        return
    tenant_id = handled.change.payer_tenant_id
    with tenant_session(tenant_id) as session:
        state = entitlements.state(session, tenant_id)
        tenant = session.get_one(Tenant, tenant_id)
        title, body = NOTICES[kind]
        notify(
            session,
            tenant_id=tenant_id,
            user_ids=admins(session),
            event_key=f"billing:{handled.event_id}",
            title=title,
            body=body.format(
                workspace=tenant.name,
                plan=state.plan.name,
                status=state.status.replace("_", " "),
                grace_end=f"{state.grace_ends_at:%-d %b %Y, %H:%M} UTC" if state.grace_ends_at else "soon",
                trial_end=f"{state.trial_end:%-d %b %Y} (UTC)" if state.trial_end else "soon",
                problem=state.publishing_problem(entitlements.utcnow()) or "",
            ),
            link=mail.link("workspace.billing.index", slug=tenant.slug),
        )
        session.commit()
