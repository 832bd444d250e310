"""FakeStripe: the parts of the Stripe API Multipost uses, over real HTTP, for stripe-python to talk to.

Speaks like Stripe: form-encoded requests with bracketed keys (`line_items[0][price]`),
Bearer secret-key auth, JSON answers with `object` and prefixed ids (`cus_`, `cs_`,
`sub_`, `si_`, `in_`, `price_`, `bps_`, `evt_`), errors as
`{"error": {"type", "message", "code", "param"}}`, Idempotency-Key replays, and the
current API's shapes (2025+: a subscription's period lives on its items; an
invoice names its subscription under `parent.subscription_details`).

Hosted pages stand in for Stripe's: `/checkout/<cs_id>` (Pay / Decline) and
`/portal/<bps_id>` (fix the card, use a declining card, cancel). Paying creates
the subscription and its invoice and sends signed webhooks
(`Stripe-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.payload" with the webhook secret>`)
to `webhook_url` from a background thread, like Stripe, then redirects to
`success_url` with `{CHECKOUT_SESSION_ID}` filled in.

In a test:

    with FakeStripe(webhook_url=f"{live}/webhooks/stripe") as stripe:
        ... the app with STRIPE_API_BASE = stripe.base_url ...
        stripe.pay_checkout(session_id)          # what the Pay button does
        stripe.wait_delivered()                   # every queued webhook answered
        stripe.renew(sub_id)                      # the period (or trial) ends: invoice, paid or failed
        stripe.deliver(event, times=10)           # the same event again, synchronously; returns statuses
        stripe.deliver(event, signature="bad")    # or "stale" (outside tolerance) or "missing"
        stripe.hold = True                        # queue events without sending, to deliver out of order

Standalone (`make run`): `python -m tests.fakes.stripe --port 0 --webhook-url URL --webhook-secret S
--price price_pro:2900:Pro --price price_agency:1900:Agency` prints its base URL and serves until SIGTERM.

Control API (JSON, under `<base>/_control/`, on top of the generic one):
    POST /_control/subscriptions/<id>/renew     end the trial or period now: invoice, then paid or past_due
    POST /_control/subscriptions/<id>/status    {"status": "unpaid"|"canceled"|...}
    POST /_control/customers/<id>/card          {"declines": true|false}
    POST /_control/customers/<id>/pay           fix the card and pay every open invoice
    GET  /_control/events                       every event, oldest first, with its deliveries
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import hmac
import html
import itertools
import json
import queue
import re
import secrets
import sys
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, json_response, serve_until_stopped
from tests.fakes.standalone import FakeClock

API_VERSION = "2026-02-25.clover"
PERIOD = timedelta(days=30)
MIN_CHECKOUT_TRIAL = timedelta(hours=48)  # Checkout refuses a trial_end closer than this
Signature = Literal["good", "bad", "stale", "missing"]


@dataclasses.dataclass
class Delivery:
    event_id: str
    status: int | None  # None: the app could not be reached
    signature: Signature


def decode_form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def sign(payload: str, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> FakeResponse:
    body = {"error": {"type": type_, "message": message, "code": code, "param": param}}
    return json_response(status, body, outcome="rejected")


def _missing(kind: str, object_id: str) -> FakeResponse:
    return _error(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")


def _page(title: str, body: str) -> FakeResponse:
    document = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:34rem;margin:3rem auto}button{margin:.3rem;padding:.5rem 1rem}"
        ".error{color:#b00}</style>"
        f"<body><p><b>FakeStripe</b> (local test double of Stripe)</p>{body}</body></html>"
    )
    return FakeResponse(200, document.encode(), {"Content-Type": "text/html; charset=utf-8"}, outcome="read")


def _redirect(url: str) -> FakeResponse:
    return FakeResponse(303, b"", {"Location": url, "Content-Type": "text/plain"}, outcome="committed")


class FakeStripe(FakeServer):
    """One Stripe account. All state sits behind the clock's lock; webhooks go out from a delivery thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        secret_key: str = "sk_test_fake",
        webhook_secret: str = "whsec_fake",
        webhook_url: str | None = None,
        prices: Sequence[tuple[str, int, str]] = (("price_pro", 2900, "Pro"), ("price_agency", 1900, "Agency")),
    ) -> None:
        super().__init__(host=host, port=port)
        self.clock = FakeClock()
        self.secret_key, self.webhook_secret, self.webhook_url = secret_key, webhook_secret, webhook_url
        self.hold = False  # True: events queue up in `held` instead of being sent
        self.held: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[Delivery] = []
        self.customers: dict[str, dict[str, Any]] = {}
        self.checkout_sessions: dict[str, dict[str, Any]] = {}
        self.portal_sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.declining_customers: set[str] = set()
        self._idempotent: dict[str, FakeResponse] = {}
        self._seq = itertools.count(1)
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._unsent = 0
        self._sent = threading.Condition()
        self._sender: threading.Thread | None = None
        for price_id, amount, name in prices:
            self.add_price(price_id, amount, name)

    # -- lifecycle: the delivery thread lives as long as the server -------------------------------------------------

    def start(self) -> FakeStripe:
        super().start()
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_forever, name="fake-stripe-webhooks", daemon=True)
            self._sender.start()
        return self

    def stop(self) -> None:
        if self._sender is not None:
            self._outbox.put(None)
            self._sender.join(timeout=10)
            self._sender = None
        super().stop()

    # -- test helpers ------------------------------------------------------------------------------------------------

    def add_price(self, price_id: str, unit_amount: int, name: str) -> dict[str, Any]:
        price = {
            "id": price_id,
            "object": "price",
            "active": True,
            "currency": "eur",
            "unit_amount": unit_amount,
            "type": "recurring",
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
            "product": f"prod_{price_id.removeprefix('price_')}",
            "nickname": name,
            "livemode": False,
            "created": self._now(),
            "metadata": {},
        }
        self.prices[price_id] = price
        return price

    def pay_checkout(self, session_id: str) -> str:
        """What the hosted page's Pay button does. Returns where the browser is sent next."""
        with self.clock.lock:
            return self._complete_checkout(self.checkout_sessions[session_id])

    def renew(self, subscription_id: str) -> dict[str, Any]:
        """The trial or the period ends now: bill the next period; paid (active) or failed (past_due)."""
        with self.clock.lock:
            sub = self.subscriptions[subscription_id]
            previous = {"status": sub["status"]}
            item = sub["items"]["data"][0]
            start = max(item["current_period_end"], sub.get("trial_end") or 0)
            item["current_period_start"], item["current_period_end"] = start, start + int(PERIOD.total_seconds())
            invoice = self._invoice(sub, "subscription_cycle", amount=self._amount(sub))
            if self._charge(sub["customer"], invoice):
                sub["status"] = "active"
            else:
                sub["status"] = "past_due"
            self._emit("customer.subscription.updated", sub, previous)
            return sub

    def set_status(self, subscription_id: str, status: str) -> dict[str, Any]:
        """Stripe moved the subscription (dunning ended, or an operator acted); canceled ends it. Returns the event."""
        with self.clock.lock:
            sub = self.subscriptions[subscription_id]
            previous = {"status": sub["status"]}
            sub["status"] = status
            if status == "canceled":
                sub["canceled_at"] = sub["ended_at"] = self._now()
                return self._emit("customer.subscription.deleted", sub, previous)
            else:
                return self._emit("customer.subscription.updated", sub, previous)

    def decline_cards(self, customer_id: str, declines: bool = True) -> None:
        with self.clock.lock:
            (self.declining_customers.add if declines else self.declining_customers.discard)(customer_id)

    def pay_open_invoices(self, customer_id: str) -> None:
        """The customer fixes the card (in the portal); Stripe retries and pays what is open."""
        with self.clock.lock:
            self.declining_customers.discard(customer_id)
            for invoice in [i for i in self.invoices.values() if i["customer"] == customer_id]:
                if invoice["status"] == "open":
                    self._charge(customer_id, invoice)
            for sub in self.subscriptions.values():
                if sub["customer"] == customer_id and sub["status"] in ("past_due", "unpaid"):
                    previous = {"status": sub["status"]}
                    sub["status"] = "active"
                    self._emit("customer.subscription.updated", sub, previous)

    def trial_will_end(self, subscription_id: str) -> dict[str, Any]:
        with self.clock.lock:
            return self._emit("customer.subscription.trial_will_end", self.subscriptions[subscription_id])

    def events_of(self, type_: str) -> list[dict[str, Any]]:
        with self.clock.lock:
            return [e for e in self.events if e["type"] == type_]

    def deliver(self, event: dict[str, Any], *, times: int = 1, signature: Signature = "good") -> list[int | None]:
        """Send `event` to the app now, `times` times, synchronously. Returns the HTTP statuses."""
        return [self._post(event, signature) for _ in range(times)]

    def release_held(self, order: Sequence[dict[str, Any]] | None = None) -> list[int | None]:
        """Send the held events (in `order`, default as created) synchronously and stop holding."""
        with self.clock.lock:
            events, self.held, self.hold = list(order if order is not None else self.held), [], False
        return [self._post(event, "good") for event in events]

    def wait_delivered(self, timeout: float = 10.0) -> None:
        """Block until every event queued for sending has been answered (or given up on)."""
        with self._sent:
            if not self._sent.wait_for(lambda: self._unsent == 0, timeout):
                raise TimeoutError(f"{self._unsent} webhook(s) still unsent after {timeout} s")

    # -- the API -----------------------------------------------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        path = request.path.rstrip("/")
        if path.startswith("/checkout/") or path.startswith("/portal/"):
            return self._hosted(request, path)
        if not path.startswith("/v1/"):
            return _error(404, f"Unrecognized request URL ({request.method}: {path}).")
        if not self._authorized(request.header("authorization")):
            return _error(401, "Invalid API Key provided.", type_="invalid_request_error", code="api_key_invalid")
        key = request.header("idempotency-key")
        if request.method == "POST" and key:
            with self.clock.lock:
                if key in self._idempotent:
                    replay = self._idempotent[key]
                    return dataclasses.replace(
                        replay, headers={**replay.headers, "Idempotent-Replayed": "true"}, outcome="replayed"
                    )
        params = decode_form(request.body) if request.method == "POST" else dict(request.query)
        with self.clock.lock:
            response = self._route(request.method, path.removeprefix("/v1"), params)
            if request.method == "POST" and key and response.status < 500:
                self._idempotent[key] = response
        return response

    def _route(self, method: str, path: str, params: dict[str, Any]) -> FakeResponse:
        parts = path.strip("/").split("/")
        route = (method, parts[0] if parts else "", len(parts))
        if route == ("POST", "customers", 1):
            return self._create_customer(params)
        if route == ("GET", "customers", 2):
            return self._get("customer", self.customers, parts[1])
        if path == "/checkout/sessions" and method == "POST":
            return self._create_checkout_session(params)
        if path.startswith("/checkout/sessions/") and method == "GET":
            return self._get("checkout.session", self.checkout_sessions, parts[2])
        if path == "/billing_portal/sessions" and method == "POST":
            return self._create_portal_session(params)
        if route == ("GET", "subscriptions", 2):
            return self._get("subscription", self.subscriptions, parts[1])
        if route == ("POST", "subscriptions", 2):
            return self._update_subscription(parts[1], params)
        if route == ("DELETE", "subscriptions", 2):
            sub = self.subscriptions.get(parts[1])
            if sub is None:
                return _missing("subscription", parts[1])
            self.set_status(parts[1], "canceled")
            return json_response(200, self.subscriptions[parts[1]], outcome="committed")
        if route == ("GET", "invoices", 1):
            return self._list_invoices(params)
        if route == ("GET", "invoices", 2):
            return self._get("invoice", self.invoices, parts[1])
        if route == ("GET", "prices", 2):
            return self._get("price", self.prices, parts[1])
        if route == ("GET", "prices", 1):
            return json_response(200, self._list(list(self.prices.values()), "/v1/prices"))
        return _error(404, f"Unrecognized request URL ({method}: /v1{path}).")

    def _get(self, kind: str, table: dict[str, dict[str, Any]], object_id: str) -> FakeResponse:
        found = table.get(object_id)
        return json_response(200, found) if found is not None else _missing(kind, object_id)

    def _create_customer(self, params: dict[str, Any]) -> FakeResponse:
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "name": params.get("name"),
            "email": params.get("email"),
            "metadata": params.get("metadata") or {},
            "created": self._now(),
            "livemode": False,
            "invoice_settings": {"default_payment_method": None},
        }
        self.customers[customer["id"]] = customer
        return json_response(200, customer, outcome="committed")

    def _create_checkout_session(self, params: dict[str, Any]) -> FakeResponse:
        if params.get("mode") != "subscription":
            return _error(400, "Only subscription mode is supported by this fake.", param="mode")
        if params.get("customer") not in self.customers:
            return _missing("customer", str(params.get("customer")))
        items = params.get("line_items") or []
        if len(items) != 1 or items[0].get("price") not in self.prices:
            return _error(400, "No such price.", code="resource_missing", param="line_items[0][price]")
        for field in ("success_url", "cancel_url"):
            if not str(params.get(field, "")).startswith(("http://", "https://")):
                return _error(400, f"Not a valid URL: {field}", code="url_invalid", param=field)
        subscription_data = params.get("subscription_data") or {}
        trial_end = subscription_data.get("trial_end")
        if trial_end is not None and int(trial_end) < self._now() + MIN_CHECKOUT_TRIAL.total_seconds():
            return _error(
                400,
                "trial_end must be at least 48 hours in the future.",
                code="parameter_invalid_integer",
                param="subscription_data[trial_end]",
            )
        session_id = self._id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "status": "open",
            "payment_status": "unpaid",
            "customer": params["customer"],
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "subscription": None,
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "url": f"{self.base_url}/checkout/{session_id}",
            "created": self._now(),
            "expires_at": self._now() + 24 * 3600,
            "livemode": False,
            "currency": "eur",
            "amount_total": int(self.prices[items[0]["price"]]["unit_amount"]) * int(items[0].get("quantity", 1)),
            # Kept for completing the session; Stripe keeps these too (line_items are listed separately).
            "_line_item": {"price": items[0]["price"], "quantity": int(items[0].get("quantity", 1))},
            "_subscription_data": subscription_data,
        }
        self.checkout_sessions[session_id] = session
        return json_response(200, self._public(session), outcome="committed")

    def _create_portal_session(self, params: dict[str, Any]) -> FakeResponse:
        if params.get("customer") not in self.customers:
            return _missing("customer", str(params.get("customer")))
        session_id = self._id("bps")
        session = {
            "id": session_id,
            "object": "billing_portal.session",
            "customer": params["customer"],
            "return_url": params.get("return_url"),
            "url": f"{self.base_url}/portal/{session_id}",
            "created": self._now(),
            "livemode": False,
        }
        self.portal_sessions[session_id] = session
        return json_response(200, session, outcome="committed")

    def _update_subscription(self, subscription_id: str, params: dict[str, Any]) -> FakeResponse:
        sub = self.subscriptions.get(subscription_id)
        if sub is None:
            return _missing("subscription", subscription_id)
        if sub["status"] in ("canceled", "incomplete_expired"):
            return _error(400, "A canceled subscription can only update its cancellation_details and metadata.")
        previous: dict[str, Any] = {}
        for change in params.get("items") or []:
            item = next((i for i in sub["items"]["data"] if i["id"] == change.get("id")), None)
            if item is None:
                return _error(400, f"Invalid subscription item: {change.get('id')}", param="items")
            if "quantity" in change:
                previous.setdefault("items", json.loads(json.dumps(sub["items"])))
                item["quantity"] = int(change["quantity"])
        if "cancel_at_period_end" in params:
            previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
            sub["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
            sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"] if sub["cancel_at_period_end"] else None
        if "metadata" in params:
            sub["metadata"] = {**sub["metadata"], **params["metadata"]}
        self._emit("customer.subscription.updated", sub, previous)
        return json_response(200, sub, outcome="committed")

    def _list_invoices(self, params: dict[str, Any]) -> FakeResponse:
        found = [i for i in self.invoices.values() if not params.get("customer") or i["customer"] == params["customer"]]
        found.sort(key=lambda i: (i["created"], i["id"]), reverse=True)  # newest first, like Stripe
        return json_response(200, self._list(found[: int(params.get("limit", 10))], "/v1/invoices"))

    # -- hosted pages ------------------------------------------------------------------------------------------------

    def _hosted(self, request: FakeRequest, path: str) -> FakeResponse:
        kind, _, rest = path.strip("/").partition("/")
        object_id, _, action = rest.partition("/")
        with self.clock.lock:
            if kind == "checkout":
                session = self.checkout_sessions.get(object_id)
                if session is None:
                    return _page("Not found", "<h1>This checkout link is not valid.</h1>")
                return self._checkout_page(session, request.method, action)
            portal = self.portal_sessions.get(object_id)
            if portal is None:
                return _page("Not found", "<h1>This portal link is not valid.</h1>")
            return self._portal_page(portal, request.method, action)

    def _checkout_page(self, session: dict[str, Any], method: str, action: str) -> FakeResponse:
        if session["status"] != "open":
            return _redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
        if method == "POST" and action == "pay":
            return _redirect(self._complete_checkout(session))
        price = self.prices[session["_line_item"]["price"]]
        trial = session["_subscription_data"].get("trial_end")
        declined = ""
        if method == "POST" and action == "decline":
            declined = "<p class=error role=alert>Your card was declined. Try another card.</p>"
        quantity = session["_line_item"]["quantity"]
        body = (
            f"<h1>Subscribe to {html.escape(price['nickname'])}</h1>"
            f"<p>{quantity} × {price['unit_amount'] / 100:.2f} EUR per month"
            f"{' after a free trial' if trial else ''}.</p>{declined}"
            f"<form method=post action='{self.base_url}/checkout/{session['id']}/pay'>"
            "<button type=submit>Pay</button></form>"
            f"<form method=post action='{self.base_url}/checkout/{session['id']}/decline'>"
            "<button type=submit>Decline (card declined)</button></form>"
            f"<p><a href='{html.escape(session['cancel_url'])}'>Back</a></p>"
        )
        return _page("Checkout", body)

    def _portal_page(self, portal: dict[str, Any], method: str, action: str) -> FakeResponse:
        customer = portal["customer"]
        subs = [s for s in self.subscriptions.values() if s["customer"] == customer]
        if method == "POST":
            if action == "card":
                self.pay_open_invoices(customer)
            elif action == "declining-card":
                self.declining_customers.add(customer)
            elif action == "cancel":
                for sub in subs:
                    if sub["status"] not in ("canceled", "incomplete_expired"):
                        self._update_subscription(sub["id"], {"cancel_at_period_end": "true"})
            return _redirect(f"{self.base_url}/portal/{portal['id']}")
        rows = "".join(
            f"<li>{html.escape(s['items']['data'][0]['price']['nickname'])}: {s['status']}"
            f"{' (cancels at period end)' if s['cancel_at_period_end'] else ''}</li>"
            for s in subs
        )
        open_invoices = sum(1 for i in self.invoices.values() if i["customer"] == customer and i["status"] == "open")
        base = f"{self.base_url}/portal/{portal['id']}"
        body = (
            f"<h1>Billing portal</h1><ul>{rows or '<li>No subscription</li>'}</ul>"
            f"<p>Open invoices: {open_invoices}</p>"
            f"<form method=post action='{base}/card'><button>Update payment method</button></form>"
            f"<form method=post action='{base}/declining-card'><button>Use a card that declines</button></form>"
            f"<form method=post action='{base}/cancel'><button>Cancel subscription</button></form>"
            f"<p><a href='{html.escape(portal['return_url'] or '#')}'>Return to Multipost</a></p>"
        )
        return _page("Billing portal", body)

    # -- what happens inside Stripe ----------------------------------------------------------------------------------

    def _complete_checkout(self, session: dict[str, Any]) -> str:
        success = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])
        if session["status"] != "open":
            return success
        now = self._now()
        line = session["_line_item"]
        data = session["_subscription_data"]
        trial_end = int(data["trial_end"]) if data.get("trial_end") else None
        sub_id = self._id("sub")
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": session["customer"],
            "status": "trialing" if trial_end else "active",
            "created": now,
            "start_date": now,
            "billing_cycle_anchor": trial_end or now,
            "trial_start": now if trial_end else None,
            "trial_end": trial_end,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "ended_at": None,
            "collection_method": "charge_automatically",
            "currency": "eur",
            "livemode": False,
            "metadata": data.get("metadata") or {},
            "latest_invoice": None,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": self._id("si"),
                        "object": "subscription_item",
                        "created": now,
                        "price": self.prices[line["price"]],
                        "quantity": line["quantity"],
                        "subscription": sub_id,
                        "current_period_start": now,
                        "current_period_end": trial_end or now + int(PERIOD.total_seconds()),
                        "metadata": {},
                    }
                ],
                "has_more": False,
                "total_count": 1,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
        }
        self.subscriptions[sub_id] = sub
        self._emit("customer.subscription.created", sub)
        invoice = self._invoice(sub, "subscription_create", amount=0 if trial_end else self._amount(sub))
        self._charge(session["customer"], invoice)
        session.update(status="complete", payment_status="paid", subscription=sub_id, url=None)
        self._emit("checkout.session.completed", self._public(session))
        return success

    def _amount(self, sub: dict[str, Any]) -> int:
        item = sub["items"]["data"][0]
        return int(item["price"]["unit_amount"]) * int(item["quantity"])

    def _invoice(self, sub: dict[str, Any], reason: str, *, amount: int) -> dict[str, Any]:
        item = sub["items"]["data"][0]
        invoice_id = self._id("in")
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "customer": sub["customer"],
            "number": f"FAKE-{len(self.invoices) + 1:04d}",
            "status": "open",
            "billing_reason": reason,
            "collection_method": "charge_automatically",
            "currency": "eur",
            "amount_due": amount,
            "amount_paid": 0,
            "amount_remaining": amount,
            "attempt_count": 0,
            "attempted": False,
            "created": self._now(),
            "period_start": item["current_period_start"],
            "period_end": item["current_period_end"],
            "hosted_invoice_url": f"{self.base_url}/invoices/{invoice_id}",
            "invoice_pdf": f"{self.base_url}/invoices/{invoice_id}/pdf",
            "livemode": False,
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"subscription": sub["id"], "metadata": sub["metadata"]},
            },
            "lines": {
                "object": "list",
                "data": [
                    {
                        "id": self._id("il"),
                        "object": "line_item",
                        "amount": amount,
                        "currency": "eur",
                        "quantity": item["quantity"],
                        "period": {"start": item["current_period_start"], "end": item["current_period_end"]},
                        "pricing": {"type": "price_details", "price_details": {"price": item["price"]["id"]}},
                    }
                ],
                "has_more": False,
            },
            "status_transitions": {"finalized_at": self._now(), "paid_at": None},
        }
        self.invoices[invoice_id] = invoice
        sub["latest_invoice"] = invoice_id
        self._emit("invoice.created", invoice)
        self._emit("invoice.finalized", invoice)
        return invoice

    def _charge(self, customer_id: str, invoice: dict[str, Any]) -> bool:
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        if invoice["amount_due"] > 0 and customer_id in self.declining_customers:
            self._emit("invoice.payment_failed", invoice)
            return False
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = self._now()
        self._emit("invoice.paid", invoice)
        self._emit("invoice.payment_succeeded", invoice)
        return True

    # -- events and their delivery -----------------------------------------------------------------------------------

    def _emit(self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"object": json.loads(json.dumps(obj))}  # a snapshot, as Stripe sends
        if previous:
            data["previous_attributes"] = previous
        event = {
            "id": self._id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self._now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self.events.append(event)
        if self.hold:
            self.held.append(event)
        elif self.webhook_url:
            with self._sent:
                self._unsent += 1
            self._outbox.put(event)
        return event

    def _send_forever(self) -> None:
        while (event := self._outbox.get()) is not None:
            try:
                for backoff in (0.0, 0.2, 1.0):  # Stripe retries for days; a local demo needs seconds
                    time.sleep(backoff)
                    status = self._post(event, "good")
                    if status is not None and status < 500:
                        break
            finally:
                with self._sent:
                    self._unsent -= 1
                    self._sent.notify_all()

    def _post(self, event: dict[str, Any], signature: Signature) -> int | None:
        assert self.webhook_url, "no webhook_url to deliver to"
        payload = json.dumps(event, indent=2)  # Stripe's bodies are pretty-printed: verify raw bytes, not JSON
        now = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        if signature == "good":
            headers["Stripe-Signature"] = sign(payload, self.webhook_secret, now)
        elif signature == "bad":
            headers["Stripe-Signature"] = sign(payload, "whsec_not_the_secret", now)
        elif signature == "stale":
            headers["Stripe-Signature"] = sign(payload, self.webhook_secret, now - 3600)
        try:
            status: int | None = httpx.post(
                self.webhook_url, content=payload.encode(), headers=headers, timeout=30
            ).status_code
        except httpx.HTTPError:
            status = None
        with self.clock.lock:
            self.deliveries.append(Delivery(event["id"], status, signature))
        return status

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        payload = request.json() if request.body else {}
        parts = name.split("/")
        if request.method == "GET" and name == "events":
            with self.clock.lock:
                return json_response(
                    200, {"events": self.events, "deliveries": [dataclasses.asdict(d) for d in self.deliveries]}
                )
        if request.method != "POST" or len(parts) != 3:
            return None
        kind, object_id, action = parts
        if kind == "subscriptions" and object_id in self.subscriptions:
            if action == "renew":
                return json_response(200, self.renew(object_id))
            if action == "status":
                return json_response(200, self.set_status(object_id, str(payload["status"])))
        if kind == "customers" and object_id in self.customers:
            if action == "card":
                self.decline_cards(object_id, bool(payload.get("declines", True)))
                return json_response(200, {"declines": object_id in self.declining_customers})
            if action == "pay":
                self.pay_open_invoices(object_id)
                return json_response(200, {"paid": True})
        return json_response(404, {"error": f"nothing to control at {name}"})

    def _authorized(self, header: str) -> bool:
        """Bearer <secret key>, or Basic auth with the key as the user name (`curl -u sk_test_...:`), like Stripe."""
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            return hmac.compare_digest(value, self.secret_key)
        if scheme == "Basic":
            user = base64.b64decode(value.encode()).decode(errors="replace").partition(":")[0]
            return hmac.compare_digest(user, self.secret_key)
        return False

    # -- small helpers -----------------------------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._seq):06d}{secrets.token_hex(6)}"

    def _list(self, data: list[dict[str, Any]], url: str) -> dict[str, Any]:
        return {"object": "list", "data": data, "has_more": False, "url": url}

    @staticmethod
    def _public(session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if not k.startswith("_")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake Stripe until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (the URL is printed)")
    parser.add_argument("--secret-key", default="sk_test_local")
    parser.add_argument("--webhook-secret", default="whsec_local")
    parser.add_argument("--webhook-url", help="where events are POSTed, e.g. http://127.0.0.1:5000/webhooks/stripe")
    parser.add_argument("--price", action="append", default=[], help="ID:UNIT_AMOUNT_CENTS:NAME (repeatable)")
    args = parser.parse_args(argv)
    prices = [(p.split(":")[0], int(p.split(":")[1]), p.split(":", 2)[2]) for p in args.price] or [
        ("price_pro", 2900, "Pro"),
        ("price_agency", 1900, "Agency"),
    ]
    fake = FakeStripe(
        host=args.host,
        port=args.port,
        secret_key=args.secret_key,
        webhook_secret=args.webhook_secret,
        webhook_url=args.webhook_url,
        prices=prices,
    )
    return serve_until_stopped(fake)


if __name__ == "__main__":
    sys.exit(main())
