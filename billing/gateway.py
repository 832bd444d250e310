"""The only module that calls Stripe, through stripe-python.

One `stripe.StripeClient` per settings (no global `stripe.api_key`), pointed at
`STRIPE_API_BASE`, so tests and `make run` drive the real library against the
local fake. Everything returned is plain data (dicts as Stripe sent them, or small
frozen dataclasses): no Stripe objects leak past this module.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from datetime import UTC, datetime
from typing import Any

import stripe

from billing.settings import StripeSettings

log = logging.getLogger(__name__)


class GatewayError(RuntimeError):
    """Stripe refused or could not be reached. The message is safe to show a user."""


class BadSignature(ValueError):
    """A webhook whose signature, header or timestamp does not verify."""


@dataclasses.dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclasses.dataclass(frozen=True)
class Invoice:
    id: str
    number: str | None
    status: str
    amount_due: int  # in the currency's smallest unit
    amount_paid: int
    currency: str
    created: datetime
    hosted_invoice_url: str | None

    @property
    def amount_label(self) -> str:
        amount = self.amount_paid if self.status == "paid" else self.amount_due
        return f"{amount / 100:,.2f} {self.currency.upper()}"


def from_timestamp(value: Any) -> datetime | None:
    """A Stripe Unix timestamp as an aware UTC datetime (None stays None)."""
    return datetime.fromtimestamp(int(value), UTC) if value is not None else None


class Gateway:
    def __init__(self, settings: StripeSettings) -> None:
        self.settings = settings
        self.client = stripe.StripeClient(
            settings.secret_key,
            base_addresses={"api": settings.api_base},
            # The library retries only what is safe to retry, with an Idempotency-Key on every POST.
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=settings.timeout_seconds),
        )

    # -- customers, Checkout and the Billing Portal ------------------------------------------------------------------

    def create_customer(self, *, name: str, email: str | None, tenant_id: int) -> str:
        params: dict[str, Any] = {"name": name, "metadata": {"tenant_id": str(tenant_id)}}
        if email:
            params["email"] = email
        customer = self._call(self.client.v1.customers.create, params)
        return str(customer["id"])

    def create_checkout_session(
        self,
        *,
        customer_id: str,
        price_id: str,
        quantity: int,
        tenant_id: int,
        plan: str,
        success_url: str,
        cancel_url: str,
        trial_end: datetime | None,
    ) -> CheckoutSession:
        metadata = {"tenant_id": str(tenant_id), "plan": plan}
        subscription_data: dict[str, Any] = {"metadata": metadata}
        if trial_end is not None:
            subscription_data["trial_end"] = int(trial_end.timestamp())
        session = self._call(
            self.client.v1.checkout.sessions.create,
            {
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": str(tenant_id),
                "line_items": [{"price": price_id, "quantity": quantity}],
                "success_url": success_url,
                "cancel_url": cancel_url,
                "metadata": metadata,
                "subscription_data": subscription_data,
            },
        )
        return CheckoutSession(id=str(session["id"]), url=str(session["url"]))

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        return self._call(self.client.v1.checkout.sessions.retrieve, session_id)

    def create_portal_session(self, *, customer_id: str, return_url: str) -> str:
        session = self._call(
            self.client.v1.billing_portal.sessions.create, {"customer": customer_id, "return_url": return_url}
        )
        return str(session["url"])

    # -- subscriptions and invoices ----------------------------------------------------------------------------------

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe has it now (the truth when events arrive out of order)."""
        return self._call(self.client.v1.subscriptions.retrieve, subscription_id)

    def set_quantity(self, *, subscription_id: str, item_id: str, quantity: int) -> dict[str, Any]:
        """Change the subscription's quantity; Stripe prorates the difference on the next invoice."""
        return self._call(
            self.client.v1.subscriptions.update,
            subscription_id,
            {"items": [{"id": item_id, "quantity": quantity}], "proration_behavior": "create_prorations"},
        )

    def invoices(self, customer_id: str, limit: int = 12) -> list[Invoice]:
        page = self._call(self.client.v1.invoices.list, {"customer": customer_id, "limit": limit})
        return [
            Invoice(
                id=str(i["id"]),
                number=i.get("number"),
                status=str(i.get("status") or "draft"),
                amount_due=int(i.get("amount_due") or 0),
                amount_paid=int(i.get("amount_paid") or 0),
                currency=str(i.get("currency") or "eur"),
                created=from_timestamp(i["created"]) or datetime.now(UTC),
                hosted_invoice_url=i.get("hosted_invoice_url"),
            )
            for i in page["data"]
        ]

    # -- webhooks ----------------------------------------------------------------------------------------------------

    def verify_event(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        """The event in `payload` if the header signs these exact bytes within the tolerance; BadSignature otherwise."""
        if not signature_header:
            raise BadSignature("missing Stripe-Signature header")
        try:
            text = payload.decode("utf-8")
            stripe.WebhookSignature.verify_header(  # type: ignore[no-untyped-call]
                text, signature_header, self.settings.webhook_secret, self.settings.tolerance_seconds
            )
            event = json.loads(text)
        except stripe.SignatureVerificationError as exc:
            raise BadSignature(str(exc)) from None
        except ValueError as exc:  # signed, but not UTF-8 JSON
            raise BadSignature(f"unreadable payload: {exc}") from None
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise BadSignature("payload is not a Stripe event")
        return event

    # -- plumbing ----------------------------------------------------------------------------------------------------

    def _call(self, method: Any, *args: Any) -> dict[str, Any]:
        try:
            result = method(*args)
        except stripe.StripeError as exc:
            # Stripe's own message may name internals; log it, show a sentence.
            log.warning("Stripe call %s failed: %s (%s)", getattr(method, "__qualname__", method), exc, exc.code)
            if isinstance(exc, stripe.APIConnectionError):
                raise GatewayError("We could not reach our payment provider. Please try again in a minute.") from None
            raise GatewayError(
                "Our payment provider refused the request. Please try again, or contact support."
            ) from None
        # The JSON exactly as Stripe sent it: plain dicts, nothing of the library's object model.
        data: dict[str, Any] = result.last_response.data
        return data


@functools.lru_cache(maxsize=8)
def gateway_for(settings: StripeSettings) -> Gateway:
    """One client (and its HTTP connection pool) per configuration."""
    return Gateway(settings)
