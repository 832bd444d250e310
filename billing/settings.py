"""Billing's view of the configuration: built from the app's settings, passed in explicitly (no Flask here)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from billing.plans import Plan, load_plans


@dataclasses.dataclass(frozen=True)
class StripeSettings:
    secret_key: str
    webhook_secret: str
    api_base: str
    tolerance_seconds: int
    timeout_seconds: float


@dataclasses.dataclass(frozen=True)
class BillingSettings:
    enabled: bool  # False: no Stripe configured, nothing is limited (self-hosted, and tests of other parts)
    plans: Mapping[str, Plan]
    grace: timedelta  # how long past_due keeps publishing
    trial: timedelta
    trial_carries_over: bool  # choosing a plan mid-trial starts a Stripe trial for the days left
    stripe: StripeSettings | None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BillingSettings:
        enabled = bool(config.get("BILLING_ENABLED"))
        stripe = None
        if enabled:
            stripe = StripeSettings(
                secret_key=str(config["STRIPE_SECRET_KEY"]),
                webhook_secret=str(config.get("STRIPE_WEBHOOK_SECRET") or ""),
                api_base=str(config["STRIPE_API_BASE"]),
                tolerance_seconds=int(config["STRIPE_WEBHOOK_TOLERANCE_SECONDS"]),
                timeout_seconds=float(config["STRIPE_TIMEOUT_SECONDS"]),
            )
        return cls(
            enabled=enabled,
            plans=load_plans(config),
            grace=config["BILLING_GRACE_PERIOD"],
            trial=timedelta(days=int(config["BILLING_TRIAL_DAYS"])),
            trial_carries_over=bool(config.get("BILLING_TRIAL_CARRIES_OVER")),
            stripe=stripe,
        )
