"""Deleting a published post on the networks too, where the adapter can: one RQ job per channel.

The network call happens in a worker, never in the web request; a failure is told to
the workspace's owners and admins, since the post is gone from Multipost by then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so
from redis import Redis

from publishers.errors import PublisherError
from saas.channels import service as channel_service
from saas.channels.models import Channel
from saas.notifications import service as notification_service
from saas.posts.models import PostTarget, TargetState
from saas.publishing.dispatch import publish_queue
from saas.publishing.networks import publisher_for
from tenants import tenant_session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemotePost:
    channel_id: int
    remote_id: str
    handle: str


def deletable(session: so.Session, post_id: int) -> list[RemotePost]:
    """The post's live copies on networks whose adapter can delete them."""
    rows = session.execute(
        sa.select(PostTarget.channel_id, PostTarget.remote_id, Channel.handle, Channel.network)
        .join(Channel, Channel.id == PostTarget.channel_id)
        .where(PostTarget.post_id == post_id, PostTarget.state == TargetState.PUBLISHED)
        .where(PostTarget.remote_id.is_not(None))
        .order_by(PostTarget.id)
    )
    return [
        RemotePost(channel_id, remote_id, handle)
        for channel_id, remote_id, handle, network in rows
        if remote_id and publisher_for(network).capabilities.supports_delete
    ]


def enqueue(connection: Redis, tenant_id: int, posts: list[RemotePost]) -> None:
    queue = publish_queue(connection)
    for post in posts:
        queue.enqueue(delete_remote_post, tenant_id, post.channel_id, post.remote_id)


def delete_remote_post(tenant_id: int, channel_id: int, remote_id: str) -> str:
    """Job: delete one post on its network (an already-deleted post counts as deleted by the adapters)."""
    with tenant_session(tenant_id) as session:
        channel = session.scalar(sa.select(Channel).where(Channel.id == channel_id))
        if channel is None:
            return "channel gone"
        try:
            publisher_for(channel.network).delete(remote_id, channel_service.load_credentials(channel))
        except PublisherError as exc:
            log.warning("deleting %s on channel %s failed: %s", remote_id, channel_id, type(exc).__name__)
            notification_service.notify(
                session,
                tenant_id=tenant_id,
                user_ids=notification_service.admins(session),
                event_key=f"remote-delete-failed:{channel_id}:{remote_id}",
                title=f"A deleted post is still live on @{channel.handle}",
                body=f"We could not delete it there ({exc}). Delete it on the network yourself.",
                link=None,
            )
            session.commit()
            return "failed"
    return "deleted"
