"""Posts, their publish attempts, and their approval: thin views over saas.posts.service and saas.approvals.service."""

from __future__ import annotations

import base64
import json
import zoneinfo
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy.orm as so

from saas import db, timezones
from saas.api.models import Scope
from saas.api.problems import Problem, invalid
from saas.api.registry import Call, Reply, api
from saas.api.schemas import (
    ApprovalOut,
    AttemptList,
    AttemptOut,
    CommentCreate,
    CommentList,
    CommentOut,
    Decision,
    PostCreate,
    PostOut,
    PostPage,
    PostQuery,
    PostUpdate,
)
from saas.approvals import service as approvals
from saas.approvals.models import Verdict
from saas.media import service as media_service
from saas.posts import listing, recurrence, service
from saas.posts.listing import Document, PageFilters
from saas.posts.models import Post, PostState
from saas.posts.service import ComposeError, Extras, PostActionError, Schedule
from tenants.models import Role, User

PUBLISHERS = (Role.OWNER, Role.ADMIN, Role.EDITOR)

# ComposeError names a form field; the API names its own.
FIELDS = {
    "text": "text",
    "channels": "channel_ids",
    "when": "scheduled_at",
    "tags": "tags",
    "repeat": "recurrence",
    "media": "media_ids",
}


def post_out(post: Document) -> dict[str, Any]:
    """The API's view of a post (`PostOut`), as plain JSON values from the post's document. Not validated
    again: every value comes from our own row, already in the API's form, and a page of fifty is shaped
    hundreds of times a second. tests/test_api.py holds it to `PostOut`."""
    media_ids, media_overrides = service.media_of(post)
    overrides = service.overrides_of(post)
    moment = post.scheduled_at
    rule = recurrence.Rule.from_json(post.recurrence) if post.recurrence else None
    return {
        "id": post.id,
        "version": post.revision,
        "state": post.state,
        "text": post.text,
        "scheduled_at": moment,
        "scheduled_at_local": _local(moment, post.timezone) if moment else None,
        "timezone": post.timezone,
        "channel_ids": service.channel_ids_of(post),
        "targets": [_target_out(t) for t in post.targets],
        "channel_overrides": [
            {
                "channel_id": cid,
                "text": overrides.get(cid),
                "media_ids": list(media_overrides[cid]) if cid in media_overrides else None,
            }
            for cid in sorted(set(overrides) | set(media_overrides))
        ],
        "thread": [str(part.get("text") or "") for part in post.thread or ()],
        "tags": list(post.tags or ()),
        "notes": post.notes,
        "first_comment": post.first_comment,
        "media_ids": list(media_ids),
        "recurrence": rule.as_json() if rule else None,
        "series_id": post.series_id,
        "author_id": post.author_id,
        "created_at": post.created_at,
        "updated_at": post.updated_at,
    }


def _target_out(target: Document) -> dict[str, Any]:
    out = dict(vars(target))  # TargetOut's fields in its order (saas.posts.listing), and the media override
    del out["media_override"]
    return out


def _local(moment: str, zone: str) -> str:
    """An RFC 3339 moment in UTC as the same moment in `zone`, with its offset (`Z` for none, as pydantic)."""
    local = datetime.fromisoformat(moment).astimezone(_zone(zone)).isoformat()
    return local[:-6] + "Z" if local.endswith("+00:00") else local


@cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name if timezones.is_timezone(name) else "UTC")


def _etag(post: Post | Document) -> dict[str, str]:
    return {"ETag": f'"{post.revision}"'}


def _cursor(post: Document) -> str:
    return base64.urlsafe_b64encode(json.dumps([post.scheduled_at, post.id]).encode()).decode()


def _after(cursor: str | None) -> tuple[datetime | None, int] | None:
    if cursor is None:
        return None
    try:
        moment, last_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        parsed = datetime.fromisoformat(moment) if moment is not None else None
        if not isinstance(last_id, int) or (parsed is not None and parsed.tzinfo is None):
            raise ValueError(cursor)
        return parsed, last_id
    except (ValueError, TypeError, UnicodeError):
        raise invalid("cursor", "This cursor is not one we gave out; start again without it.") from None


def _find(post_id: int) -> Document:
    post = listing.one(db.session(), post_id)
    if post is None:
        raise Problem(404, f"There is no post {post_id} in this workspace.")
    return post


def _find_with_history(post_id: int) -> Post:
    post = service.post_with_history(db.session(), post_id)
    if post is None:
        raise Problem(404, f"There is no post {post_id} in this workspace.")
    return post


def _may_publish(call: Call) -> None:
    if call.workspace.publishes_through_agency:
        raise Problem(403, "In a managed client the agency drafts and schedules; the client's people approve.")


@api.operation(
    "GET",
    "/posts",
    summary="List posts",
    tag="Posts",
    scope=Scope.READ,
    query=PostQuery,
    response=PostPage,
    description="In time order, undated drafts last; filter by a time window, state, channel or tag.",
)
def list_posts(call: Call) -> dict[str, Any]:
    q: PostQuery = call.query
    if q.from_ is not None and q.to is not None and q.to <= q.from_:
        raise invalid("to", "`to` must be after `from`.")
    filters = PageFilters(start=q.from_, end=q.to, state=q.state, channel_id=q.channel_id, tag=q.tag)
    posts = listing.page(db.session(), filters, _after(q.cursor), q.limit + 1)
    more = len(posts) > q.limit
    posts = posts[: q.limit]
    return {"data": [post_out(p) for p in posts], "next_cursor": _cursor(posts[-1]) if more else None}


@api.operation("GET", "/posts/{post_id}", summary="Read a post", tag="Posts", scope=Scope.READ, response=PostOut)
def get_post(call: Call, post_id: int) -> Reply:
    post = _find(post_id)
    return Reply(post_out(post), headers=_etag(post))


def _check_ids(body: Any) -> None:
    """Name the media ids that are not this workspace's, before the service says "one of them"."""
    session = db.session()
    media = list(body.media_ids or ()) + [m for o in body.channel_overrides or () for m in o.media_ids or ()]
    if media:
        found = {m.id for m in media_service.by_ids(session, media)}
        unknown = sorted(set(media) - found)
        if unknown:
            raise invalid("media_ids", f"No media with id {', '.join(map(str, unknown))} in this workspace.")
    for override in body.channel_overrides or ():
        if body.channel_ids is not None and override.channel_id not in body.channel_ids:
            raise invalid("channel_overrides", f"Channel {override.channel_id} is not one of `channel_ids`.")


def _schedule(body: Any, zone: str, current: Post | None, draft: bool) -> Schedule:
    if body.timezone is not None and not timezones.is_timezone(body.timezone):
        raise invalid("timezone", f"Unknown time zone {body.timezone!r}; use an IANA name like Europe/Paris.")
    zone = body.timezone or (current.timezone if current else zone)
    if sum(bool(x) for x in (body.publish_now, body.queue, body.scheduled_at)) > 1:
        raise invalid("scheduled_at", "Give one of `scheduled_at`, `publish_now` or `queue`.")
    if body.publish_now:
        return Schedule(True, None, zone)
    if body.queue:
        return Schedule(False, None, zone, queue=True)
    moment = body.scheduled_at or (current.scheduled_at if current else None)
    if moment is None:
        if not draft:
            raise invalid("scheduled_at", "Give `scheduled_at` (RFC 3339 with an offset), `publish_now` or `queue`.")
        return Schedule(False, None, zone)
    local = timezones.to_local(moment, zone)
    return Schedule(False, local.replace(tzinfo=None), zone, fold=local.fold)


def _extras(body: Any, current: Post | None) -> Extras:
    base = service.extras_of(current) if current is not None else Extras()
    overrides, media_overrides = dict(base.overrides), dict(base.media_overrides)
    if body.channel_overrides is not None:
        overrides = {o.channel_id: o.text for o in body.channel_overrides if o.text}
        media_overrides = {o.channel_id: tuple(o.media_ids) for o in body.channel_overrides if o.media_ids is not None}
    fields = body.model_fields_set
    rule = base.repeat
    if "recurrence" in fields:
        try:
            rule = recurrence.Rule(**body.recurrence.model_dump()) if body.recurrence else None
        except recurrence.RecurrenceError as exc:
            raise invalid("recurrence", str(exc)) from None
    return Extras(
        overrides=overrides,
        thread=tuple(body.thread) if body.thread is not None else base.thread,
        tags=tuple(body.tags) if body.tags is not None else base.tags,
        notes=body.notes if body.notes is not None else base.notes,
        first_comment=body.first_comment if body.first_comment is not None else base.first_comment,
        media_ids=tuple(body.media_ids) if body.media_ids is not None else base.media_ids,
        media_overrides=media_overrides,
        repeat=rule,
    )


def _save(call: Call, body: Any, current: Post | None) -> Document:
    _may_publish(call)
    _check_ids(body)
    draft = body.draft if body.draft is not None else (current is not None and current.state is PostState.DRAFT)
    channel_ids = (
        body.channel_ids if body.channel_ids is not None else (service.channel_ids_of(current) if current else [])
    )
    text = body.text if body.text is not None else (current.text if current else "")
    save = service.save_draft if draft else service.schedule_post
    try:
        post = save(
            db.session(),
            author_id=call.grant.user_id,
            text=text,
            channel_ids=channel_ids,
            schedule=_schedule(body, call.workspace.timezone, current, draft),
            extras=_extras(body, current),
            post_id=current.id if current else None,
        )
    except service.NotEditable as exc:
        raise Problem(409, exc.message) from None
    except service.UnknownChannels as exc:
        unknown = ", ".join(map(str, exc.ids))
        raise invalid("channel_ids", f"No channel with id {unknown} in this workspace.") from None
    except ComposeError as exc:
        field = FIELDS.get(exc.field, "channel_overrides" if exc.field.startswith("override-") else exc.field)
        raise invalid(field, exc.message) from None
    db.session.flush()
    return _find(post.id)


@api.operation(
    "POST",
    "/posts",
    summary="Create a post",
    tag="Posts",
    scope=Scope.WRITE,
    roles=PUBLISHERS,
    body=PostCreate,
    response=PostOut,
    status=201,
    description="Checked like the composer: each channel's own text limit, media, time and plan. "
    "A workspace that requires approval sends it for approval at once.",
)
def create_post(call: Call) -> Reply:
    post = _save(call, call.body, None)
    return Reply(post_out(post), 201, {"Location": f"/api/v1/posts/{post.id}", **_etag(post)})


@api.operation(
    "PATCH",
    "/posts/{post_id}",
    summary="Change a post",
    tag="Posts",
    scope=Scope.WRITE,
    roles=PUBLISHERS,
    body=PostUpdate,
    response=PostOut,
    versioned=True,
    description="Only while nothing of it has been sent. Send `If-Match` (the ETag) or `version` "
    "to be refused (412 / 409) instead of overwriting a change you have not seen.",
)
def update_post(call: Call, post_id: int) -> Reply:
    # Locked until the edit commits: two writers holding the same version cannot both pass the check.
    post = service.locked_post(db.session(), post_id)
    if post is None:
        raise Problem(404, f"There is no post {post_id} in this workspace.")
    if call.if_match is not None and call.if_match.strip() not in (f'"{post.revision}"', f'W/"{post.revision}"', "*"):
        raise Problem(412, f"The post changed since you read it: it is now version {post.revision}.")
    if call.body.version is not None and call.body.version != post.revision:
        raise Problem(409, f"The post changed since you read it: it is now version {post.revision}.", kind="stale")
    saved = _save(call, call.body, post)
    return Reply(post_out(saved), headers=_etag(saved))


@api.operation(
    "DELETE",
    "/posts/{post_id}",
    summary="Delete a post",
    tag="Posts",
    scope=Scope.WRITE,
    roles=PUBLISHERS,
    status=204,
    description="Removes it and its history here; what is live stays on the networks.",
)
def delete_post(call: Call, post_id: int) -> None:
    _may_publish(call)
    _act_on_post(service.delete_post, post_id)


@api.operation(
    "POST",
    "/posts/{post_id}/cancel",
    summary="Cancel a post",
    tag="Posts",
    scope=Scope.WRITE,
    roles=PUBLISHERS,
    response=PostOut,
    description="Cancels every channel it has not gone out to yet.",
)
def cancel_post(call: Call, post_id: int) -> dict[str, Any]:
    _may_publish(call)
    _act_on_post(service.cancel_post, post_id)
    db.session.flush()
    return post_out(_find(post_id))


def _act_on_post(act: Callable[[so.Session, int], Post | None], post_id: int) -> None:
    """A service action on one post: 409 when its state refuses it, 404 when it is not this workspace's."""
    try:
        found = act(db.session(), post_id)
    except PostActionError as exc:
        raise Problem(409, str(exc)) from None
    if found is None:
        raise Problem(404, f"There is no post {post_id} in this workspace.")


@api.operation(
    "GET",
    "/posts/{post_id}/attempts",
    summary="List a post's publish attempts",
    tag="Posts",
    scope=Scope.READ,
    response=AttemptList,
)
def list_attempts(call: Call, post_id: int) -> AttemptList:
    post = _find_with_history(post_id)
    return AttemptList(
        data=[
            AttemptOut(
                id=a.id,
                target_id=t.id,
                channel_id=t.channel_id,
                attempt_no=a.attempt_no,
                started_at=a.started_at,
                finished_at=a.finished_at,
                outcome=a.outcome,
                error_class=a.error_class,
                http_status=a.http_status,
                latency_ms=a.latency_ms,
                remote_id=a.remote_id,
                message=a.message,
            )
            for t in post.targets
            for a in t.attempts
        ]
    )


# --- approval ----------------------------------------------------------------------------------------------------


def _approval(post_id: int) -> ApprovalOut:
    post = _find(post_id)
    latest = approvals.latest_request(db.session(), post_id)
    return ApprovalOut(
        post_id=post.id,
        post_state=post.state,
        status=latest.status if latest else None,
        version=latest.revision if latest else None,
        step=latest.step_name if latest else None,
        decided_at=latest.decided_at if latest else None,
    )


@api.operation(
    "GET",
    "/posts/{post_id}/approval",
    summary="Read a post's approval",
    tag="Approvals",
    scope=Scope.READ,
    response=ApprovalOut,
)
def get_approval(call: Call, post_id: int) -> ApprovalOut:
    return _approval(post_id)


@api.operation(
    "POST",
    "/posts/{post_id}/approval/submit",
    summary="Send a post for approval",
    tag="Approvals",
    scope=Scope.WRITE,
    roles=PUBLISHERS,
    response=ApprovalOut,
)
def submit_for_approval(call: Call, post_id: int) -> ApprovalOut:
    _find(post_id)
    try:
        approvals.submit(db.session(), [post_id], call.grant.user_id)
    except approvals.ApprovalError as exc:
        raise Problem(409, str(exc)) from None
    return _approval(post_id)


def _decide(call: Call, post_id: int, verdict: Verdict) -> ApprovalOut:
    _find(post_id)
    body: Decision = call.body
    try:
        approvals.decide(
            db.session(),
            post_id,
            user_id=call.grant.user_id,
            verdict=verdict,
            revision=body.version,
            comment=body.comment,
        )
    except approvals.ApprovalError as exc:
        raise Problem(409, str(exc)) from None
    return _approval(post_id)


@api.operation(
    "POST",
    "/posts/{post_id}/approval/approve",
    summary="Approve a post",
    tag="Approvals",
    scope=Scope.APPROVE,
    body=Decision,
    response=ApprovalOut,
    description="As the token's person, at the step under way; refused if they are not its approver "
    "or the post changed since `version`.",
)
def approve_post(call: Call, post_id: int) -> ApprovalOut:
    return _decide(call, post_id, Verdict.APPROVED)


@api.operation(
    "POST",
    "/posts/{post_id}/approval/request-changes",
    summary="Ask for changes to a post",
    tag="Approvals",
    scope=Scope.APPROVE,
    body=Decision,
    response=ApprovalOut,
    description="`comment` says what should change.",
)
def request_changes(call: Call, post_id: int) -> ApprovalOut:
    return _decide(call, post_id, Verdict.CHANGES_REQUESTED)


def _sees_internal(call: Call) -> bool:
    w = call.workspace
    return approvals.sees_internal(w.kind, w.role, w.acting_for_client)


def _comment_out(c: Any) -> CommentOut:
    return CommentOut(
        id=c.id,
        parent_id=c.parent_id,
        author_id=c.author_id,
        author_name=c.author_name,
        body=c.body,
        internal=c.internal,
        version=c.revision,
        created_at=c.created_at,
    )


@api.operation(
    "GET",
    "/posts/{post_id}/comments",
    summary="List a post's comments",
    tag="Approvals",
    scope=Scope.READ,
    response=CommentList,
)
def list_comments(call: Call, post_id: int) -> CommentList:
    _find(post_id)
    found = approvals.comments(db.session(), post_id, include_internal=_sees_internal(call))
    return CommentList(data=[_comment_out(c) for c in found])


@api.operation(
    "POST",
    "/posts/{post_id}/comments",
    summary="Comment on a post",
    tag="Approvals",
    scope=Scope.APPROVE,
    body=CommentCreate,
    response=CommentOut,
    status=201,
)
def create_comment(call: Call, post_id: int) -> Reply:
    _find(post_id)
    body: CommentCreate = call.body
    author = db.session().get(User, call.grant.user_id)
    assert author is not None
    try:
        comment = approvals.add_comment(
            db.session(),
            post_id,
            author=author,
            body=body.body,
            internal=_sees_internal(call) and body.internal,
            parent_id=body.parent_id,
        )
    except approvals.ApprovalError as exc:
        raise invalid("body", str(exc)) from None
    except LookupError:
        raise invalid("parent_id", "No comment with this id on this post.") from None
    return Reply(_comment_out(comment), 201)
