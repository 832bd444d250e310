"""HTTP face of the Sandbox network: the JSON API adapters call, and public timeline pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from saas import db
from saas.extensions import csrf, redis_client
from saas.sandbox import service
from saas.sandbox.models import SandboxAccount, SandboxPost
from saas.sandbox.service import SandboxError

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")
csrf.exempt(bp)  # a bearer-token API, not a form

ACCOUNT_LIMIT = "300 per 5 minutes"  # Mastodon's per-account limit


def _post_json(post: SandboxPost, handle: str) -> dict[str, Any]:
    base = current_app.config["SANDBOX_BASE_URL"]
    return {
        "id": post.id,
        "url": f"{base}/@{handle}/{post.id}",
        "text": post.text,
        "media_urls": post.media_urls,
        "created_at": post.created_at.isoformat(),
    }


def _limiter() -> FixedWindowRateLimiter:
    limiter = current_app.extensions.get("sandbox_limiter")
    if limiter is None:
        storage = RedisStorage(
            current_app.config["REDIS_URL"], connection_pool=redis_client().connection_pool, key_prefix="sandbox"
        )
        limiter = current_app.extensions["sandbox_limiter"] = FixedWindowRateLimiter(storage)
    return limiter


def _rate_limit_headers(account: SandboxAccount) -> dict[str, str]:
    item = parse(ACCOUNT_LIMIT)
    allowed = _limiter().hit(item, account.id)
    stats = _limiter().get_window_stats(item, account.id)
    reset = datetime.fromtimestamp(stats.reset_time, UTC)
    headers = {
        "X-RateLimit-Limit": str(item.amount),
        "X-RateLimit-Remaining": str(stats.remaining),
        "X-RateLimit-Reset": reset.isoformat(),
    }
    if not allowed:
        seconds = max(1, int(stats.reset_time - datetime.now().timestamp()))
        raise _Limited(headers | {"Retry-After": str(seconds)})
    return headers


class _Limited(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def _error(status: int, error: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": error})
    response.status_code = status
    if status == 401:
        description = "expired" if error == "token_expired" else "revoked"
        response.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{description}"'
    response.headers.update(headers or {})
    return response


def _api(handler: Any) -> Any:
    """Authenticate the bearer token, apply the rate limit, and turn SandboxError into JSON."""

    def wrapped(**kwargs: Any) -> Any:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        session = db.session()
        try:
            account = service.authenticate(session, token)
            headers = _rate_limit_headers(account)
            body, status = handler(session, account, **kwargs)
            session.commit()
        except SandboxError as exc:
            session.rollback()
            return _error(exc.status, exc.error)
        except _Limited as exc:
            return _error(429, "Too many requests", exc.headers)
        response = jsonify(body)
        response.status_code = status
        response.headers.update(headers)
        return response

    wrapped.__name__ = handler.__name__
    return wrapped


@bp.get("/api/v1/me")
@_api
def me(session: Any, account: SandboxAccount) -> tuple[Any, int]:
    base = current_app.config["SANDBOX_BASE_URL"]
    return {
        "id": account.id,
        "handle": account.handle,
        "display_name": account.display_name,
        "url": f"{base}/@{account.handle}",
    }, 200


@bp.post("/api/v1/posts")
@_api
def create_post(session: Any, account: SandboxAccount) -> tuple[Any, int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SandboxError(422, "Send a JSON object with text")
    text, media = body.get("text", ""), body.get("media_urls") or []
    if not isinstance(text, str) or not isinstance(media, list) or not all(isinstance(m, str) for m in media):
        raise SandboxError(422, "text must be a string and media_urls a list of strings")
    post, created = service.create_post(session, account, text, media, request.headers.get("Idempotency-Key"))
    return _post_json(post, account.handle), 201 if created else 200


@bp.get("/api/v1/posts")
@_api
def list_posts(session: Any, account: SandboxAccount) -> tuple[Any, int]:
    since_raw = request.args.get("since")
    try:
        since = datetime.fromisoformat(since_raw.replace("Z", "+00:00")) if since_raw else None
        limit = min(100, max(1, int(request.args.get("limit", 40))))
    except ValueError:
        raise SandboxError(422, "since must be an ISO 8601 time and limit a number") from None
    return [_post_json(p, account.handle) for p in service.posts_since(session, account, since, limit)], 200


@bp.route("/api/v1/posts/<post_id>", methods=["GET", "DELETE"])
@_api
def one_post(session: Any, account: SandboxAccount, post_id: str) -> tuple[Any, int]:
    post = session.scalar(sa.select(SandboxPost).where(SandboxPost.id == post_id, SandboxPost.account_id == account.id))
    if post is None:
        raise SandboxError(404, "Post not found")
    body = _post_json(post, account.handle)
    if request.method == "DELETE":
        session.delete(post)
    return body, 200


@bp.post("/oauth/token")
def token() -> Any:
    if request.form.get("grant_type") != "refresh_token":
        return _error(400, "unsupported_grant_type")
    session = db.session()
    try:
        tokens = service.refresh(session, request.form.get("refresh_token", ""))
    except SandboxError as exc:
        session.rollback()
        return _error(exc.status, exc.error)
    session.commit()
    return jsonify(
        {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "token_type": "Bearer",
            "expires_in": int(service.ACCESS_TOKEN_LIFETIME.total_seconds()),
        }
    )


@bp.get("/@<handle>")
def timeline(handle: str) -> Any:
    account, posts = service.timeline(db.session(), handle)
    if account is None:
        abort(404)
    return render_template("sandbox/timeline.html", account=account, posts=posts)


@bp.get("/@<handle>/<post_id>")
def post_page(handle: str, post_id: str) -> Any:
    account, posts = service.timeline(db.session(), handle, limit=1000)
    post = next((p for p in posts if p.id == post_id), None)
    if account is None or post is None:
        abort(404)
    return render_template("sandbox/timeline.html", account=account, posts=[post], single=True)
