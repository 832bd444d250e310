"""The workspace around the posts: channels (pause/resume), queue slots, media, tags, members, agency clients."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import Any

import sqlalchemy.orm as so

from saas import db, entitlements, timezones
from saas.api.models import Scope
from saas.api.problems import Problem, invalid
from saas.api.registry import Call, Reply, api
from saas.api.schemas import (
    ChannelList,
    ChannelOut,
    ChannelPaused,
    ClientCreate,
    ClientList,
    ClientOut,
    MediaList,
    MediaOut,
    MediaUpdate,
    MemberList,
    MemberOut,
    SlotCreate,
    SlotList,
    SlotOut,
    SlotQuery,
    TagList,
    TagOut,
    WorkspaceOut,
)
from saas.api.tokens import clients_of
from saas.channels import service as channel_service
from saas.channels.models import Channel
from saas.media import service as media_service
from saas.media.models import MediaItem
from saas.posts import queue
from saas.posts import service as post_service
from saas.posts.queue import PostingSlot
from tenants import agency
from tenants import service as tenant_service
from tenants.models import ClientMode, Role, Tenant, TenantKind

EDITORS = (Role.OWNER, Role.ADMIN, Role.EDITOR)


@api.operation(
    "GET", "/workspace", summary="Read the token's workspace", tag="Workspace", scope=Scope.READ, response=WorkspaceOut
)
def get_workspace(call: Call) -> WorkspaceOut:
    w = call.workspace
    return WorkspaceOut(
        id=w.tenant_id,
        name=w.name,
        slug=w.slug,
        kind=w.kind.value,
        timezone=w.timezone,
        role=w.role.value,
        scopes=sorted(call.grant.scopes),
        agency=w.agency_name,
    )


def _channel_out(c: Channel) -> ChannelOut:
    return ChannelOut(
        id=c.id,
        network=c.network,
        handle=c.handle,
        display_name=c.display_name,
        profile_url=c.profile_url,
        health=c.health,
        health_reason=c.health_reason,
        paused=c.paused_at is not None,
        timezone=c.timezone,
    )


def _channel(channel_id: int) -> Channel:
    try:
        return channel_service.channel(db.session(), channel_id)
    except LookupError:
        raise Problem(404, f"There is no channel {channel_id} in this workspace.") from None


@api.operation("GET", "/channels", summary="List channels", tag="Channels", scope=Scope.READ, response=ChannelList)
def list_channels(call: Call) -> ChannelList:
    return ChannelList(data=[_channel_out(c) for c in channel_service.channels(db.session())])


@api.operation(
    "GET", "/channels/{channel_id}", summary="Read a channel", tag="Channels", scope=Scope.READ, response=ChannelOut
)
def get_channel(call: Call, channel_id: int) -> ChannelOut:
    return _channel_out(_channel(channel_id))


@api.operation(
    "POST",
    "/channels/{channel_id}/pause",
    summary="Pause a channel",
    tag="Channels",
    scope=Scope.WRITE,
    roles=EDITORS,
    response=ChannelPaused,
    description="Its waiting posts are held (blocked) until it is resumed.",
)
def pause_channel(call: Call, channel_id: int) -> ChannelPaused:
    return _switch(queue.pause, channel_id)


@api.operation(
    "POST",
    "/channels/{channel_id}/resume",
    summary="Resume a channel",
    tag="Channels",
    scope=Scope.WRITE,
    roles=EDITORS,
    response=ChannelPaused,
    description="Held posts go out at their time; any whose time passed go now.",
)
def resume_channel(call: Call, channel_id: int) -> ChannelPaused:
    return _switch(queue.resume, channel_id)


def _switch(act: Callable[[so.Session, int, datetime], int], channel_id: int) -> ChannelPaused:
    """Pause or resume: 404 for another workspace's channel; how many posts were held or released."""
    _channel(channel_id)
    affected = act(db.session(), channel_id, post_service.utcnow())
    return ChannelPaused(channel=_channel_out(_channel(channel_id)), affected_posts=affected)


def _slot_out(slot: PostingSlot) -> SlotOut:
    return SlotOut(
        id=slot.id, channel_id=slot.channel_id, weekday=slot.weekday, time=f"{slot.local_time:%H:%M}", label=slot.label
    )


@api.operation(
    "GET",
    "/queue-slots",
    summary="List posting slots",
    tag="Queue",
    scope=Scope.READ,
    query=SlotQuery,
    response=SlotList,
)
def list_slots(call: Call) -> SlotList:
    session = db.session()
    channel_id = call.query.channel_id
    if channel_id is not None:
        _channel(channel_id)
    ids = [channel_id] if channel_id is not None else [c.id for c in channel_service.channels(session)]
    return SlotList(data=[_slot_out(s) for cid in ids for s in queue.slots(session, cid)])


@api.operation(
    "POST",
    "/channels/{channel_id}/queue-slots",
    summary="Add a posting slot",
    tag="Queue",
    scope=Scope.WRITE,
    roles=EDITORS,
    body=SlotCreate,
    response=SlotOut,
    status=201,
)
def create_slot(call: Call, channel_id: int) -> Reply:
    _channel(channel_id)
    body: SlotCreate = call.body
    try:
        slot = queue.add_slot(db.session(), channel_id, body.weekday, time.fromisoformat(body.time))
    except queue.QueueError as exc:
        raise Problem(409, str(exc)) from None
    return Reply(_slot_out(slot), 201)


@api.operation(
    "DELETE",
    "/queue-slots/{slot_id}",
    summary="Remove a posting slot",
    tag="Queue",
    scope=Scope.WRITE,
    roles=EDITORS,
    status=204,
    description="Posts already in it keep their time.",
)
def delete_slot(call: Call, slot_id: int) -> None:
    if queue.remove_slot(db.session(), slot_id) is None:
        raise Problem(404, f"There is no posting slot {slot_id} in this workspace.")


def _media_out(m: MediaItem) -> MediaOut:
    return MediaOut(
        id=m.id,
        filename=m.filename,
        mime_type=m.mime_type,
        size_bytes=m.size_bytes,
        width=m.width,
        height=m.height,
        alt=m.alt,
        created_at=m.created_at,
    )


@api.operation("GET", "/media", summary="List media", tag="Media", scope=Scope.READ, response=MediaList)
def list_media(call: Call) -> MediaList:
    return MediaList(data=[_media_out(m) for m in media_service.library(db.session())])


@api.operation(
    "GET", "/media/{media_id}", summary="Read a media item", tag="Media", scope=Scope.READ, response=MediaOut
)
def get_media(call: Call, media_id: int) -> MediaOut:
    item = media_service.get(db.session(), media_id)
    if item is None:
        raise Problem(404, f"There is no media {media_id} in this workspace.")
    return _media_out(item)


UPLOAD_FORM = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "JPEG, PNG, GIF, WebP or MP4."},
        "alt": {"type": "string", "maxLength": media_service.MAX_ALT, "description": "Alt text."},
    },
    "required": ["file"],
}


@api.operation(
    "POST",
    "/media",
    summary="Upload media",
    tag="Media",
    scope=Scope.WRITE,
    roles=EDITORS,
    multipart=UPLOAD_FORM,
    response=MediaOut,
    status=201,
    description="multipart/form-data with `file` and optional `alt`; checked like the library's upload.",
)
def upload_media(call: Call) -> Reply:
    files: dict[str, Any] = call.files
    if files["filename"] is None:
        raise invalid("file", "Attach the file as the `file` part.")
    try:
        item = media_service.upload(
            db.session(),
            filename=files["filename"],
            data=files["data"],
            alt=files["form"].get("alt", ""),
            uploaded_by=call.grant.user_id,
        )
    except media_service.MediaError as exc:
        raise invalid("file", str(exc)) from None
    return Reply(_media_out(item), 201, {"Location": f"/api/v1/media/{item.id}"})


@api.operation(
    "PATCH",
    "/media/{media_id}",
    summary="Change a media item's alt text",
    tag="Media",
    scope=Scope.WRITE,
    roles=EDITORS,
    body=MediaUpdate,
    response=MediaOut,
)
def update_media(call: Call, media_id: int) -> MediaOut:
    try:
        item = media_service.set_alt(db.session(), media_id, call.body.alt)
    except media_service.MediaError as exc:
        raise invalid("alt", str(exc)) from None
    if item is None:
        raise Problem(404, f"There is no media {media_id} in this workspace.")
    return _media_out(item)


@api.operation(
    "GET",
    "/tags",
    summary="List tags",
    tag="Tags",
    scope=Scope.READ,
    response=TagList,
    description="Every tag the workspace's posts use, most used first.",
)
def list_tags(call: Call) -> TagList:
    return TagList(data=[TagOut(tag=t, posts=n) for t, n in post_service.tag_counts(db.session())])


@api.operation("GET", "/members", summary="List members", tag="Members", scope=Scope.READ, response=MemberList)
def list_members(call: Call) -> MemberList:
    return MemberList(
        data=[
            MemberOut(user_id=m.user_id, name=m.user.name, email=m.user.email, role=m.role.value)
            for m in tenant_service.members(db.session())
        ]
    )


@api.operation(
    "GET",
    "/clients",
    summary="List the agency's clients",
    tag="Clients (agency)",
    scope=Scope.READ,
    response=ClientList,
    own_workspace_only=True,
    description="The clients this agency token may act on, under /clients/{client_id}/…; empty outside an agency.",
)
def list_clients(call: Call) -> ClientList:
    return ClientList(data=[_client_out(c) for c in clients_of(db.session(), call.grant)])


def _client_out(c: Tenant) -> ClientOut:
    return ClientOut(id=c.id, name=c.name, slug=c.slug, timezone=c.timezone, mode=c.client_mode.value)


@api.operation(
    "POST",
    "/clients",
    summary="Create a client workspace",
    tag="Clients (agency)",
    scope=Scope.WRITE,
    roles=(Role.OWNER, Role.ADMIN),
    body=ClientCreate,
    response=ClientOut,
    status=201,
    own_workspace_only=True,
    description="Agency workspaces only. The agency's subscription follows the number of clients.",
)
def create_client(call: Call) -> Reply:
    if call.workspace.kind is not TenantKind.AGENCY:
        raise Problem(403, "Only an agency workspace can create client workspaces.")
    body: ClientCreate = call.body
    zone = body.timezone or call.workspace.timezone
    if not timezones.is_timezone(zone):
        raise invalid("timezone", f"Unknown time zone {zone!r}; use an IANA name like Europe/Paris.")
    session = db.session()
    try:
        client = agency.create_client(
            session, tenant_service.tenant_of(session), body.name, zone, ClientMode(body.mode)
        )
    except agency.AgencyError as exc:
        raise invalid("name", str(exc)) from None
    agency_id = call.workspace.tenant_id
    return Reply(_client_out(client), 201, after_commit=lambda: entitlements.sync_agency_quantity(agency_id))
