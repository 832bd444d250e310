"""The one place that decides whether a target may go out now.

Called by the dispatcher for every claimed target. Billing and approvals add
their rules here; nothing else decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy.orm as so

from saas import entitlements
from saas.approvals import service as approvals
from saas.channels.models import ChannelHealth
from saas.posts.models import PostTarget


@dataclass(frozen=True)
class Hold:
    """Why a target may not go out: `reason` is what blocks it ("channel", "billing"), `message` is for the user."""

    reason: str
    message: str


def prepare(session: so.Session, targets: Sequence[PostTarget]) -> None:
    """Read what the rules need for all of `targets` at once, before `hold_for` is asked about each."""
    entitlements.prepare_dispatch(session, targets)
    requiring = approvals.tenants_requiring_approval(session, {t.tenant_id for t in targets})
    needing = [t.post_id for t in targets if t.tenant_id in requiring]
    session.info["approval_dispatch"] = (requiring, approvals.approved_revisions(session, needing))


APPROVAL_HOLD = "approval"
APPROVAL_MISSING = (
    "Approval missing: this post was not approved by its time, so it was not published. "
    "Once it is approved, reschedule it."
)


def _approval_missing(target: PostTarget) -> bool:
    session = so.object_session(target)
    assert session is not None
    requiring, approved = session.info["approval_dispatch"]
    # The approval must be of the revision that would go out now: an edit after approval does not count.
    return target.tenant_id in requiring and (target.post_id, target.post.revision) not in approved


def hold_for(target: PostTarget) -> Hold | None:
    """None when the target may be published; otherwise what holds it back."""
    channel = target.channel
    if channel.health is ChannelHealth.NEEDS_RECONNECT:
        return Hold(
            "channel", f"{channel.display_name} (@{channel.handle}) needs to be reconnected before it can publish."
        )
    if channel.health is ChannelHealth.DISABLED:
        return Hold("channel", f"{channel.display_name} (@{channel.handle}) is switched off.")
    if _approval_missing(target):
        return Hold(APPROVAL_HOLD, APPROVAL_MISSING)
    billing = entitlements.dispatch_problem(target)
    if billing is not None:
        return Hold(entitlements.BILLING_HOLD, billing)
    return None


def may_publish(target: PostTarget) -> str | None:
    """None when the target may be published; otherwise why not, in words for the user."""
    hold = hold_for(target)
    return hold.message if hold else None
