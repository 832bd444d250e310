"""The built-in Sandbox network speaks the protocol the adapter expects (publishers/sandbox.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from saas import db
from saas.sandbox import service
from saas.sandbox.models import SandboxAccount
from tests.factories import app_context


@pytest.fixture
def account():
    with app_context(), db.new_session() as session:
        account, tokens = service.create_account(session, "bakery", "The Bakery")
        session.commit()
        return account, tokens


def _auth(tokens):
    return {"Authorization": f"Bearer {tokens.access_token}"}


def test_create_and_read_back(client, account):
    _, tokens = account
    before = datetime.now(UTC) - timedelta(seconds=1)
    created = client.post("/sandbox/api/v1/posts", json={"text": "Hello"}, headers=_auth(tokens))
    assert created.status_code == 201
    assert created.headers["X-RateLimit-Limit"] == "300"
    listed = client.get("/sandbox/api/v1/posts", query_string={"since": before.isoformat()}, headers=_auth(tokens))
    assert [p["id"] for p in listed.json] == [created.json["id"]]
    assert client.get(f"/sandbox/api/v1/posts/{created.json['id']}", headers=_auth(tokens)).json["text"] == "Hello"
    assert "Hello" in client.get("/sandbox/@bakery").get_data(as_text=True)


def test_same_idempotency_key_returns_the_original(client, account):
    _, tokens = account
    headers = {**_auth(tokens), "Idempotency-Key": "k-1"}
    first = client.post("/sandbox/api/v1/posts", json={"text": "Once"}, headers=headers)
    again = client.post("/sandbox/api/v1/posts", json={"text": "Once"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["id"] == again.json["id"]
    assert len(client.get("/sandbox/api/v1/posts", headers=_auth(tokens)).json) == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"text": "x" * 501}, "Text is longer than 500 characters"),
        ({"text": " "}, "Text can't be blank"),
        ({"text": "x", "media_urls": ["u"] * 5}, "At most 4 media attachments"),
        ("nope", "Send a JSON object"),
    ],
)
def test_invalid_posts_are_refused_with_a_reason(client, account, body, error):
    _, tokens = account
    response = client.post("/sandbox/api/v1/posts", json=body, headers=_auth(tokens))
    assert response.status_code == 422
    assert error in response.json["error"]


def test_expired_and_revoked_tokens(client, account):
    acct, tokens = account
    with app_context(), db.new_session() as session:
        session.execute(sa.update(SandboxAccount).values(access_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    expired = client.get("/sandbox/api/v1/me", headers=_auth(tokens))
    assert expired.status_code == 401 and expired.json["error"] == "token_expired"
    assert 'error_description="expired"' in expired.headers["WWW-Authenticate"]
    refreshed = client.post(
        "/sandbox/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    )
    assert refreshed.status_code == 200
    new_auth = {"Authorization": f"Bearer {refreshed.json['access_token']}"}
    assert client.get("/sandbox/api/v1/me", headers=new_auth).json["handle"] == "bakery"
    # Refresh tokens rotate: the old one is spent.
    again = client.post(
        "/sandbox/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    )
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"
    assert (
        client.get("/sandbox/api/v1/me", headers={"Authorization": "Bearer made-up"}).json["error"] == "token_revoked"
    )
