"""Every model, imported once so SQLAlchemy and Alembic see the whole schema."""

from billing.models import StripeEvent, Subscription
from saas.channels.models import Channel, MastodonApp, NetworkPause
from saas.notifications.models import Notification
from saas.posts.models import Post, PostTarget, PublishAttempt
from saas.sandbox.models import SandboxAccount, SandboxIdempotencyKey, SandboxPost
from tenants.models import Invitation, Membership, Tenant, User, UserToken

__all__ = [
    "Channel",
    "Invitation",
    "MastodonApp",
    "Membership",
    "NetworkPause",
    "Notification",
    "Post",
    "PostTarget",
    "PublishAttempt",
    "SandboxAccount",
    "SandboxIdempotencyKey",
    "SandboxPost",
    "StripeEvent",
    "Subscription",
    "Tenant",
    "User",
    "UserToken",
]
