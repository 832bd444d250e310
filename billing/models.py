"""A tenant's subscription as we last learned it from Stripe, and the Stripe events already applied."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.db import Base, db_enum, utc_now_default


class SubscriptionStatus(enum.StrEnum):
    """Stripe's `Subscription.status` values, as Stripe spells them."""

    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    CANCELED = "canceled"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    PAUSED = "paused"


class Subscription(Base):
    """One paying tenant's billing: its Stripe customer and (once bought) its subscription.

    Not `TenantScoped` on purpose, like `tenants`: an agency's subscription covers the
    clients it manages, so a client's workspace reads its agency's row. It holds no
    tenant content; only `billing` functions taking an explicit tenant id read it, and
    the web shows the row of the workspace in the URL (or, to agency staff, its clients').

    A tenant without a row is on the free trial counted from the tenant's creation.
    """

    __tablename__ = "subscriptions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    tenant_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), unique=True)
    plan: so.Mapped[str] = so.mapped_column(sa.String(32))  # a key of billing.plans
    # None until Stripe tells us about a subscription: the workspace is on its free trial.
    status: so.Mapped[SubscriptionStatus | None] = so.mapped_column(db_enum(SubscriptionStatus, "subscription_status"))
    stripe_customer_id: so.Mapped[str | None] = so.mapped_column(sa.String(255), unique=True)
    stripe_subscription_id: so.Mapped[str | None] = so.mapped_column(sa.String(255), unique=True)
    stripe_item_id: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    stripe_price_id: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    quantity: so.Mapped[int] = so.mapped_column(default=1)
    trial_end: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    current_period_end: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    cancel_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    cancel_at_period_end: so.Mapped[bool] = so.mapped_column(default=False)
    # When the status last became past_due: the grace period counts from here.
    past_due_since: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    # The Stripe state this row reflects: an event's `created`, or (after fetching the subscription)
    # the fetch time plus the signature tolerance. Older events never overwrite newer state.
    stripe_state_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    updated_at: so.Mapped[datetime] = so.mapped_column(
        sa.DateTime(timezone=True), server_default=utc_now_default(), onupdate=sa.func.now()
    )


class StripeEvent(Base):
    """A Stripe event already handled. Inserted in the transaction that applies it: a replay finds it and stops."""

    __tablename__ = "stripe_events"

    id: so.Mapped[str] = so.mapped_column(sa.String(255), primary_key=True)  # evt_...
    type: so.Mapped[str] = so.mapped_column(sa.String(100))
    created: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))  # Stripe's clock
    received_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    stripe_subscription_id: so.Mapped[str | None] = so.mapped_column(sa.String(255), index=True)
    outcome: so.Mapped[str] = so.mapped_column(sa.String(40))  # what we did with it, for support
