"""Every model, imported once so SQLAlchemy and Alembic see the whole schema."""

from billing.models import StripeEvent, Subscription
from saas.api.models import ApiToken, IdempotentResponse
from saas.approvals.models import ApprovalDecision, ApprovalPolicy, ApprovalRequest, PostComment, ReviewLink
from saas.channels.models import Channel, ConnectLink, MastodonApp, NetworkPause
from saas.identity.models import AccountEvent, RecoveryCode, TwoFactorCredential, UserSession
from saas.media.models import MediaItem
from saas.notifications.models import Notification
from saas.posts.ical import CalendarFeed
from saas.posts.models import Post, PostTarget, PublishAttempt
from saas.posts.queue import PostingSlot
from saas.sandbox.models import SandboxAccount, SandboxIdempotencyKey, SandboxPost
from saas.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tenants.models import (
    AuditEntry,
    Invitation,
    ManagementInvitation,
    Membership,
    StaffAssignment,
    Tenant,
    User,
    UserToken,
)

__all__ = [
    "AccountEvent",
    "RecoveryCode",
    "TwoFactorCredential",
    "UserSession",
    "ApiToken",
    "IdempotentResponse",
    "ApprovalDecision",
    "AuditEntry",
    "ApprovalPolicy",
    "ApprovalRequest",
    "PostComment",
    "ReviewLink",
    "CalendarFeed",
    "Channel",
    "ConnectLink",
    "Invitation",
    "ManagementInvitation",
    "MastodonApp",
    "MediaItem",
    "Membership",
    "NetworkPause",
    "Notification",
    "Post",
    "PostTarget",
    "PostingSlot",
    "PublishAttempt",
    "SandboxAccount",
    "SandboxIdempotencyKey",
    "SandboxPost",
    "StaffAssignment",
    "StripeEvent",
    "Subscription",
    "Tenant",
    "User",
    "UserToken",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
