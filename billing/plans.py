"""The plans a workspace can be on, what each allows, and which Stripe price sells it.

Defaults live here; names, price labels and limits can be overridden from
config (`BILLING_PLANS`, a JSON object per plan key) and the Stripe price ids
come from config (`STRIPE_PRICE_PRO`, `STRIPE_PRICE_AGENCY`), so nothing about
a plan is a constant scattered through the code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

TRIAL = "trial"
PRO = "pro"
AGENCY = "agency"

# Roles that take a paid seat. Reviewers and viewers never count.
SEAT_ROLES = ("owner", "admin", "editor")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a plan allows one workspace. None means unlimited."""

    channels: int | None
    posts_per_month: int | None
    seats: int | None

    def of(self, limit: str) -> int | None:
        value: int | None = getattr(self, limit)
        return value


LIMIT_NAMES = {
    "channels": ("channels", "channel"),
    "posts_per_month": ("scheduled posts this month", "scheduled post this month"),
    "seats": ("seats (owners, admins and editors; reviewers and viewers are free)", "seat"),
}


@dataclasses.dataclass(frozen=True)
class Plan:
    key: str
    name: str
    price_label: str
    limits: Limits
    stripe_price_id: str | None = None  # None: not sold through Stripe (the free trial)
    per_managed_client: bool = False  # the subscription's quantity is the number of managed clients
    trial_days: int = 0
    for_kinds: tuple[str, ...] = ("direct", "client")  # which tenant kinds may choose it

    @property
    def purchasable(self) -> bool:
        return self.stripe_price_id is not None


DEFAULT_PLANS: dict[str, dict[str, Any]] = {
    TRIAL: {
        "name": "Free trial",
        "price_label": "Free for {trial_days} days",
        "channels": 3,
        "posts_per_month": 30,
        "seats": 2,
        "for_kinds": ("direct", "agency", "client"),
    },
    PRO: {
        "name": "Pro",
        "price_label": "€29 / month",
        "channels": 10,
        "posts_per_month": None,
        "seats": 5,
        "for_kinds": ("direct", "client"),
    },
    AGENCY: {
        "name": "Agency",
        "price_label": "€19 per managed client / month",
        # Per workspace: the agency's own, and each client it manages.
        "channels": 10,
        "posts_per_month": None,
        "seats": None,
        "per_managed_client": True,
        "for_kinds": ("agency",),
    },
}

PRICE_SETTINGS = {PRO: "STRIPE_PRICE_PRO", AGENCY: "STRIPE_PRICE_AGENCY"}


def load_plans(settings: Mapping[str, Any]) -> dict[str, Plan]:
    """Every plan, with overrides and price ids from `settings` (the app config)."""
    overrides: Mapping[str, Mapping[str, Any]] = settings.get("BILLING_PLANS") or {}
    trial_days = int(settings.get("BILLING_TRIAL_DAYS", 14))
    plans = {}
    for key, defaults in DEFAULT_PLANS.items():
        values = {**defaults, **overrides.get(key, {})}
        plans[key] = Plan(
            key=key,
            name=str(values["name"]),
            price_label=str(values["price_label"]).format(trial_days=trial_days),
            limits=Limits(
                channels=_limit(values["channels"]),
                posts_per_month=_limit(values["posts_per_month"]),
                seats=_limit(values["seats"]),
            ),
            stripe_price_id=settings.get(PRICE_SETTINGS[key]) if key in PRICE_SETTINGS else None,
            per_managed_client=bool(values.get("per_managed_client", False)),
            trial_days=trial_days if key == TRIAL else 0,
            for_kinds=tuple(values["for_kinds"]),
        )
    return plans


def _limit(value: Any) -> int | None:
    return None if value is None else int(value)


def plan_for_price(plans: Mapping[str, Plan], price_id: str | None) -> Plan | None:
    """The plan a Stripe price sells, or None for a price we do not know."""
    for plan in plans.values():
        if price_id is not None and plan.stripe_price_id == price_id:
            return plan
    return None


def choosable(plans: Mapping[str, Plan], tenant_kind: str) -> list[Plan]:
    """Plans a tenant of this kind can buy."""
    return [p for p in plans.values() if p.purchasable and tenant_kind in p.for_kinds]
