"""The first comment: the publishing account comments under its own post, once, after the post is live.

Facebook Pages, Instagram and LinkedIn take it (`Capabilities.supports_first_comment`); networks with
threads have none: their replies are the composer's thread parts.

The dangerous edge: by the time the comment is sent the post is already live, so nothing here may
make the pipeline publish again. `add_first_comment` never raises a publishing error: a failed
comment becomes a note on the `PublishResult` (shown on the target), never a retry of the post.
It is sent at most once: its id is stored as a checkpoint, and a later attempt that finds the
checkpoint skips it. When the comment call's outcome is unknown (the answer was lost), or the post
itself was published by an earlier attempt, the post's comments are read back first, so a comment
that already landed is adopted rather than sent again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from publishers.base import Checkpoints, PublishResult
from publishers.errors import OutcomeUnknown, PublisherError, RateLimited

CHECKPOINT = "first_comment"


def add_first_comment(
    result: PublishResult,
    text: str | None,
    checkpoints: Checkpoints,
    *,
    network: str,
    send: Callable[[str], str],
    find: Callable[[str], str | None],
    resumed: bool = False,
) -> PublishResult:
    """Comment `text` under the published post; the result with a note for the user if that failed.

    `send` posts the comment and returns its id (the irreversible call); `find` reads the post's
    comments back for ours (read-only). `resumed`: the post was made by an earlier attempt, which
    may have commented too.
    """
    if not text or not text.strip() or checkpoints.get(CHECKPOINT) is not None:
        return result
    try:
        comment_id = find(text) if resumed else None
        if comment_id is None:
            comment_id = send(text)
    except OutcomeUnknown as exc:
        comment_id = _find_quietly(find, text)
        if comment_id is None:
            # Not sent again: it may still appear, and two identical comments are worse than one by hand.
            return dataclasses.replace(
                result,
                note=(
                    f"The post is live, but {network} did not confirm its first comment ({_bare(exc)}) and we "
                    "could not find it under the post. Check the post and add the comment by hand if it is missing."
                ),
            )
    except PublisherError as exc:
        return dataclasses.replace(
            result,
            note=f"The post is live, but its first comment was not added ({_bare(exc)}). Add it on {network} by hand.",
        )
    checkpoints.put(CHECKPOINT, comment_id)
    return result


def _bare(error: PublisherError) -> str:
    """The error's message to sit inside a sentence, about the comment (the shared sorters speak of "the post")."""
    if isinstance(error, RateLimited):
        return "the network is limiting this account right now"  # its "waiting until" is not true of a comment
    return error.message.replace("refused the post", "refused the comment").rstrip(". ")


def _find_quietly(find: Callable[[str], str | None], text: str) -> str | None:
    try:
        return find(text)
    except PublisherError:
        return None


def same_text(left: str, right: str) -> bool:
    """Comments compare on their words: networks may trim or fold whitespace."""
    return " ".join(left.split()) == " ".join(right.split())
