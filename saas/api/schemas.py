"""Request and response bodies of the API, as pydantic models (their JSON Schema is the OpenAPI document's).

Requests forbid unknown fields, so a misspelt field is an error rather than silently ignored. Every time
is RFC 3339 with an offset; a time without one is refused, never guessed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from saas.api.models import Scope
from saas.approvals.models import RequestStatus
from saas.channels.models import ChannelHealth
from saas.posts.models import AttemptOutcome, PostState, TargetState
from saas.posts.service import MAX_TAG, MAX_TEXT


def _utc(moment: datetime) -> datetime:
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("instant_range", "Give a time between the years 1970 and 2200.") from None
    if not 1970 <= moment.year <= 2200:
        raise PydanticCustomError("instant_range", "Give a time between the years 1970 and 2200.")
    return moment


Instant = Annotated[AwareDatetime, AfterValidator(_utc)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
ShortText = Annotated[str, Field(max_length=5000)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- posts -------------------------------------------------------------------------------------------------------


class RecurrenceIn(Request):
    """A repeating post: every `interval` days, weeks or months, in the post's wall time."""

    freq: Literal["daily", "weekly", "monthly"]
    interval: int = Field(1, ge=1, le=365)
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=list, max_length=7, description="Weekly only: 0 = Monday. Empty: the first post's weekday."
    )
    count: int | None = Field(None, ge=1, le=1000, description="End after this many posts.")
    until: date | None = Field(None, description="Or end on this local date (inclusive).")


class ChannelOverride(Request):
    """One channel's own version: its text and/or its media instead of the post's."""

    channel_id: Id
    text: str | None = Field(None, max_length=MAX_TEXT)
    media_ids: list[Id] | None = Field(None, max_length=20)


class PostFields(Request):
    text: str | None = Field(None, max_length=MAX_TEXT, description="Checked against each channel's own limit.")
    channel_ids: list[Id] | None = Field(None, max_length=50)
    scheduled_at: Instant | None = Field(None, description="When it goes out: RFC 3339 with an offset.")
    timezone: str | None = Field(
        None, max_length=64, description="IANA zone the post is shown and repeated in; default: the workspace's."
    )
    publish_now: bool | None = None
    queue: bool | None = Field(None, description="Take each channel's next free posting slot instead of a time.")
    draft: bool | None = Field(None, description="Keep as a draft: nothing goes out until it is scheduled.")
    channel_overrides: list[ChannelOverride] | None = Field(None, max_length=50)
    thread: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=25, description="Follow-up parts after the text."
    )
    tags: list[Annotated[str, Field(max_length=MAX_TAG)]] | None = Field(None, max_length=30)
    notes: ShortText | None = Field(None, description="For the team only; never published.")
    first_comment: str | None = Field(None, max_length=MAX_TEXT)
    media_ids: list[Id] | None = Field(None, max_length=20)
    recurrence: RecurrenceIn | None = None


class PostCreate(PostFields):
    """A new post: scheduled (a time, `publish_now` or `queue`) or, with `draft`, kept as a draft."""


class PostUpdate(PostFields):
    """Change a post nothing was sent for yet; fields left out keep their value (`recurrence: null` stops repeating)."""

    version: int | None = Field(None, ge=1, description="The version you read; a stale one is refused with 409.")


class PostQuery(Request):
    from_: Instant | None = Field(None, alias="from", description="Scheduled at or after (RFC 3339 with offset).")
    to: Instant | None = Field(None, description="Scheduled before (RFC 3339 with offset).")
    state: PostState | None = None
    channel_id: Id | None = None
    tag: str | None = Field(None, max_length=MAX_TAG)
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")
    limit: int = Field(50, ge=1, le=200)


class TargetOut(BaseModel):
    id: int
    channel_id: int
    state: TargetState
    scheduled_at: datetime
    text_override: str | None
    published_at: datetime | None
    remote_url: str | None
    last_error: str | None
    blocked_reason: str | None


class RecurrenceOut(BaseModel):
    freq: str
    interval: int
    weekdays: list[int]
    count: int | None
    until: date | None


class PostOut(BaseModel):
    id: int
    version: int = Field(description="Changes with every edit of text, media, channels or time (also the ETag).")
    state: PostState
    text: str
    scheduled_at: datetime | None = Field(description="In UTC.")
    scheduled_at_local: datetime | None = Field(description="The same moment in `timezone`, with its offset.")
    timezone: str
    channel_ids: list[int]
    targets: list[TargetOut]
    channel_overrides: list[ChannelOverrideOut]
    thread: list[str]
    tags: list[str]
    notes: str | None
    first_comment: str | None
    media_ids: list[int]
    recurrence: RecurrenceOut | None
    series_id: int | None
    author_id: int | None
    created_at: datetime
    updated_at: datetime


class ChannelOverrideOut(BaseModel):
    channel_id: int
    text: str | None
    media_ids: list[int] | None


class PostPage(BaseModel):
    data: list[PostOut]
    next_cursor: str | None = Field(description="Send as `cursor` for the next page; null on the last page.")


class AttemptOut(BaseModel):
    id: int
    target_id: int
    channel_id: int
    attempt_no: int
    started_at: datetime
    finished_at: datetime | None
    outcome: AttemptOutcome
    error_class: str | None
    http_status: int | None
    latency_ms: int | None
    remote_id: str | None
    message: str | None


class AttemptList(BaseModel):
    data: list[AttemptOut]


# --- approvals ---------------------------------------------------------------------------------------------------


class Decision(Request):
    version: int = Field(ge=1, description="The post version you reviewed; a newer one is refused.")
    comment: ShortText = Field("", description="Required when asking for changes.")


class ApprovalOut(BaseModel):
    post_id: int
    post_state: PostState
    status: RequestStatus | None = Field(description="null: never sent for approval.")
    version: int | None = Field(description="The post version this approval is of.")
    step: str | None = Field(description="The step under way.")
    decided_at: datetime | None


class CommentCreate(Request):
    body: str = Field(min_length=1, max_length=5000)
    internal: bool = Field(False, description="Seen only by the team (in a managed client: by the agency).")
    parent_id: Id | None = None


class CommentOut(BaseModel):
    id: int
    parent_id: int | None
    author_id: int | None
    author_name: str
    body: str
    internal: bool
    version: int
    created_at: datetime


class CommentList(BaseModel):
    data: list[CommentOut]


# --- channels, queue, media, tags, members, clients --------------------------------------------------------------


class ChannelOut(BaseModel):
    id: int
    network: str
    handle: str
    display_name: str
    profile_url: str | None
    health: ChannelHealth
    health_reason: str | None
    paused: bool
    timezone: str | None


class ChannelList(BaseModel):
    data: list[ChannelOut]


class ChannelPaused(BaseModel):
    channel: ChannelOut
    affected_posts: int = Field(description="Posts held (pause) or released (resume).")


class SlotCreate(Request):
    weekday: int = Field(ge=0, le=6, description="0 = Monday.")
    time: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Wall time HH:MM in the channel's zone.")


class SlotQuery(Request):
    channel_id: Id | None = None


class SlotOut(BaseModel):
    id: int
    channel_id: int
    weekday: int
    time: str
    label: str


class SlotList(BaseModel):
    data: list[SlotOut]


class MediaOut(BaseModel):
    id: int
    filename: str
    mime_type: str
    size_bytes: int
    width: int | None
    height: int | None
    alt: str
    created_at: datetime


class MediaList(BaseModel):
    data: list[MediaOut]


class MediaUpdate(Request):
    alt: str = Field(max_length=1500)


class TagOut(BaseModel):
    tag: str
    posts: int


class TagList(BaseModel):
    data: list[TagOut]


class MemberOut(BaseModel):
    user_id: int
    name: str
    email: str
    role: str


class MemberList(BaseModel):
    data: list[MemberOut]


class ClientOut(BaseModel):
    id: int
    name: str
    slug: str
    timezone: str
    mode: str


class ClientCreate(Request):
    name: str = Field(min_length=1, max_length=120)
    timezone: str | None = Field(None, max_length=64, description="IANA zone; default: the agency's.")
    mode: Literal["managed", "self_serve"] = Field(
        "managed", description="managed: the agency schedules, the client approves; self_serve: the client publishes."
    )


class ClientList(BaseModel):
    data: list[ClientOut]


class WorkspaceOut(BaseModel):
    id: int
    name: str
    slug: str
    kind: str
    timezone: str
    role: str = Field(description="The role of the person the token acts as.")
    scopes: list[Scope]
    agency: str | None = Field(description="When acting in a client: the agency's name.")


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(None, description="One entry per field that is wrong.")


PostOut.model_rebuild()
