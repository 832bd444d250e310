"""The composer's request side: read the form into service inputs, fill the form back from a post."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import g, request

from saas import db
from saas.channels import service as channel_service
from saas.channels.models import Channel, ChannelHealth
from saas.posts import recurrence
from saas.posts.models import Post
from saas.posts.service import ComposeError, Extras, Schedule, media_of, overrides_of  # noqa: F401 (used as composer.*)
from saas.web.forms import ComposeForm

THREAD_SEPARATOR = "---"


def compose_form(post: Post | None = None) -> tuple[ComposeForm, list[Channel]]:
    """The form with the workspace's usable channels as choices (pre-filled from `post` on GET)."""
    form = ComposeForm(formdata=None if request.method == "GET" else request.form)
    usable = [c for c in channel_service.channels(db.session()) if c.health is ChannelHealth.OK]
    form.channels.choices = [(c.id, f"{c.display_name} (@{c.handle}, {c.network})") for c in usable]
    if post is not None and request.method == "GET":
        _fill_from(form, post)
    return form, usable


def _fill_from(form: ComposeForm, post: Post) -> None:
    form.text.data = post.text
    form.channels.data = [t.channel_id for t in post.targets] or [int(d["channel_id"]) for d in post.draft_targets]
    if post.local_time is not None:
        form.date.data = post.local_time.date()
        form.time.data = post.local_time.time()
    form.thread.data = f"\n{THREAD_SEPARATOR}\n".join(str(part.get("text") or "") for part in post.thread or ())
    form.first_comment.data = post.first_comment or ""
    form.tags.data = ", ".join(post.tags or ())
    form.notes.data = post.notes or ""
    if post.recurrence:
        rule = recurrence.Rule.from_json(post.recurrence)
        form.repeat.data, form.repeat_every.data = rule.freq, rule.interval
        form.repeat_weekdays.data = list(rule.weekdays)
        form.repeat_count.data, form.repeat_until.data = rule.count, rule.until


def posted_overrides() -> dict[int, str]:
    """`override-<channel id>` fields: each channel's own text (an empty one means "use the base text")."""
    overrides = {}
    for name, value in request.form.items():
        prefix, _, channel_id = name.partition("-")
        if prefix == "override" and channel_id.isdigit() and value.strip():
            overrides[int(channel_id)] = value
    return overrides


def _ids(values: list[str]) -> tuple[int, ...]:
    return tuple(int(v) for v in values if v.isdigit())


def posted_media() -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]]:
    """The post's chosen media, and each channel's own (`own-media-<id>` ticked, then `media-<id>` choices)."""
    overrides = {}
    for name in request.form:
        prefix, _, channel_id = name.rpartition("-")
        if prefix == "own-media" and channel_id.isdigit():
            overrides[int(channel_id)] = _ids(request.form.getlist(f"media-{channel_id}"))
    return _ids(request.form.getlist("media")), overrides


def rule_from(form: ComposeForm) -> recurrence.Rule | None:
    if not form.repeat.data:
        return None
    try:
        return recurrence.Rule(
            freq=form.repeat.data,
            interval=form.repeat_every.data or 1,
            weekdays=tuple(form.repeat_weekdays.data or ()) if form.repeat.data == "weekly" else (),
            count=form.repeat_count.data or None,
            until=form.repeat_until.data or None,
        )
    except recurrence.RecurrenceError as exc:
        raise ComposeError("repeat", str(exc)) from None


def extras_from(form: ComposeForm) -> Extras:
    thread = [part for part in _split_thread(form.thread.data or "")]
    media_ids, media_overrides = posted_media()
    return Extras(
        repeat=rule_from(form),
        media_ids=media_ids,
        media_overrides=media_overrides,
        overrides=posted_overrides(),
        thread=tuple(thread),
        tags=tuple((form.tags.data or "").split(",")),
        notes=form.notes.data or "",
        first_comment=form.first_comment.data or "",
    )


def _split_thread(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip() == THREAD_SEPARATOR:
            parts.append("\n".join(current))
            current = []
        else:
            current.append(line)
    parts.append("\n".join(current))
    return [p.strip() for p in parts if p.strip()]


def entry_zone(channels: list[Channel], chosen: list[int] | None) -> str:
    """The zone the time is entered in: the chosen channels' own zone when they all share one, else the workspace's."""
    zones = {c.timezone for c in channels if c.id in (chosen or ())}
    only = next(iter(zones)) if len(zones) == 1 else None
    return only or str(g.workspace.timezone)


def schedule_from(form: ComposeForm, channels: list[Channel]) -> Schedule:
    """The chosen time, after any offered choice the person clicked (`choice` = "now" or "<iso>|<fold>")."""
    zone = entry_zone(channels, form.channels.data)
    choice = request.form.get("choice", "")
    # The fields take the chosen value too, so a re-shown form (another error) keeps it.
    if choice == "now":
        form.publish_now.data = True
    elif choice:
        iso, _, chosen_fold = choice.partition("|")
        try:
            chosen = datetime.fromisoformat(iso)
        except ValueError:
            chosen = None  # a tampered choice: the fields stand
        if chosen is not None:
            form.date.data, form.time.data = chosen.date(), chosen.time()
            form.fold.data = "1" if chosen_fold == "1" else "0"
    local_time = None
    if form.date.data and form.time.data:
        local_time = datetime.combine(form.date.data, form.time.data)
    fold = int(form.fold.data) if form.fold.data in ("0", "1") else None
    to_queue = request.form.get("action") == "queue"
    return Schedule(
        publish_now=bool(form.publish_now.data) and not to_queue,
        local_time=local_time,
        timezone=zone,
        fold=fold,
        queue=to_queue,
    )


def form_field_for(form: ComposeForm, name: str) -> Any:
    """The form field a ComposeError's `field` names (overrides are shown by the template itself)."""
    return {"when": form.date, "channels": form.channels, "tags": form.tags, "repeat": form.repeat}.get(name, form.text)
