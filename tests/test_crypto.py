"""Stored secrets are sealed at rest, bound to their row and tenant, and re-sealed by key rotation without downtime."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from publishers.base import Credentials, Profile
from saas import rls
from saas.channels import mastodon
from saas.channels import service as channel_service
from saas.channels.models import Channel, MastodonApp
from saas.crypto import DecryptionError, KeyRing, new_key
from tenants import system_session, tenant_session
from tests.conftest import owner_engine
from tests.factories import app_context, encryption_keys, make_workspace


def _connect(tenant, token="tok-" + "s3cret" * 4, remote_id=None):
    with app_context(), tenant_session(tenant.id) as session:
        channel = channel_service.connect(
            session,
            "sandbox",
            Profile(remote_id=remote_id or f"r{tenant.id}", handle="h", display_name="H"),
            Credentials(access_token=token),
        )
        session.commit()
        return channel


def test_credentials_are_not_stored_in_clear_and_open_again(app):
    tenant, _ = make_workspace()
    channel = _connect(tenant)
    assert "s3cret" not in channel.credentials_sealed
    with app_context(), tenant_session(tenant.id) as session:
        loaded = channel_service.load_credentials(session.get(Channel, channel.id))
    assert loaded.access_token == "tok-" + "s3cret" * 4
    assert "s3cret" not in repr(loaded)


def test_sealed_credentials_copied_to_another_tenant_do_not_open(app):
    tenant_a, _ = make_workspace()
    tenant_b, _ = make_workspace()
    victim = _connect(tenant_a)
    thief = _connect(tenant_b, token="thief")
    with app_context(), system_session() as session:
        session.execute(
            sa.update(Channel).where(Channel.id == thief.id).values(credentials_sealed=victim.credentials_sealed)
        )
        session.commit()
    with app_context(), tenant_session(tenant_b.id) as session:
        with pytest.raises(DecryptionError):
            channel_service.load_credentials(session.get(Channel, thief.id))


def token_of(tenant, channel_id: int) -> str:
    with app_context(), tenant_session(tenant.id) as session:
        return channel_service.load_credentials(session.get(Channel, channel_id)).access_token


def key_of(sealed: str) -> str:
    return sealed.split(".")[1]


def test_rotation_without_downtime_old_and_new_keys_open_until_the_old_one_leaves(app):
    old_key, new_key_ = app.config["ENCRYPTION_KEYS"].split(",")[0], new_key()
    tenant_a, _ = make_workspace()
    tenant_b, _ = make_workspace()
    before = [(tenant_a, _connect(tenant_a, "tok-a1")), (tenant_b, _connect(tenant_b, "tok-b1"))]
    with app_context(), system_session() as session:
        session.add(
            MastodonApp(
                instance_url="https://masto.example",
                redirect_uri="https://app.example/cb",
                client_id="client",
                client_secret_sealed=channel_service.keyring().seal(
                    b"app-secret", mastodon.app_secret_bound_to("https://masto.example")
                ),
            )
        )
        session.commit()

    with encryption_keys(app, f"{new_key_},{old_key}"):  # step 1: the new key first, the old one still listed
        newer = _connect(tenant_b, "tok-b2", remote_id="second")  # sealed by the new key at once
        # During rotation both kinds of values open.
        assert {key_of(c.credentials_sealed) for _, c in [*before, (tenant_b, newer)]} == {
            KeyRing.key_id(KeyRing.from_config(old_key).keys[0]),
            KeyRing.key_id(KeyRing.from_config(new_key_).keys[0]),
        }
        assert [token_of(t, c.id) for t, c in before] == ["tok-a1", "tok-b1"]
        assert token_of(tenant_b, newer.id) == "tok-b2"

        result = app.test_cli_runner().invoke(args=["rotate-keys", "--batch-size", "1"])  # step 2
        assert result.exit_code == 0, result.output
        assert "Re-sealed 3 value(s)" in result.output  # two old channels and the Mastodon app secret
        assert "the older keys can now leave ENCRYPTION_KEYS" in result.output
        with app_context():
            assert channel_service.sealed_with_older_keys() == 0

    with encryption_keys(app, new_key_):  # step 3: the old key is gone and everything still opens
        assert [token_of(t, c.id) for t, c in [*before, (tenant_b, newer)]] == ["tok-a1", "tok-b1", "tok-b2"]
        with app_context(), system_session() as session:
            row = session.scalars(sa.select(MastodonApp)).one()
            ring = channel_service.keyring()
            assert ring.open(row.client_secret_sealed, mastodon.app_secret_bound_to(row.instance_url)) == b"app-secret"


def test_rotation_waits_for_a_token_refresh_and_keeps_its_result(app):
    """Rotating while the app runs: a refresh committed mid-rotation is not overwritten by the old token."""
    old_key = app.config["ENCRYPTION_KEYS"].split(",")[0]
    tenant, _ = make_workspace()
    channel = _connect(tenant, "tok-before-refresh")
    with encryption_keys(app, f"{new_key()},{old_key}"):
        with app_context(), tenant_session(tenant.id) as refresh:
            row = refresh.scalars(sa.select(Channel).where(Channel.id == channel.id).with_for_update()).one()
            rotation = ThreadPoolExecutor(1).submit(_rotate_in_app, app)
            _wait_until_blocked_on_a_lock(app)
            channel_service.store_credentials(row, Credentials(access_token="tok-after-refresh"))
            refresh.commit()
        assert rotation.result(timeout=30).unreadable == []
        assert token_of(tenant, channel.id) == "tok-after-refresh"
        with app_context():
            assert channel_service.sealed_with_older_keys() == 0


def _rotate_in_app(app):
    with app.app_context():
        return channel_service.rotate_keys(batch_size=10)


def _wait_until_blocked_on_a_lock(app) -> None:
    """Until some session of the system role waits for a row lock (the rotation's FOR UPDATE)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with owner_engine(app).connect() as conn:
            waiting = conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE usename = :role AND wait_event_type = 'Lock'"),
                {"role": rls.SYSTEM_ROLE},
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError("the rotation never reached the locked row")


def test_a_sealed_credential_row_moved_to_another_tenant_does_not_open(app):
    tenant_a, _ = make_workspace()
    tenant_b, _ = make_workspace()
    channel = _connect(tenant_a, "tok-of-a")
    with owner_engine(app).begin() as conn:  # what only someone past the app could do: move the row
        conn.execute(sa.text("UPDATE channels SET tenant_id = :b WHERE id = :id"), {"b": tenant_b.id, "id": channel.id})
    with app_context(), tenant_session(tenant_b.id) as session:
        moved = session.get(Channel, channel.id)
        assert moved is not None and moved.tenant_id == tenant_b.id
        with pytest.raises(DecryptionError, match="does not belong to this record"):
            channel_service.load_credentials(moved)


def test_a_value_sealed_with_a_retired_key_says_so():
    ring = KeyRing.from_config(new_key())
    sealed = ring.seal(b"x", "channel:1:1")
    with pytest.raises(DecryptionError, match="no longer in ENCRYPTION_KEYS"):
        KeyRing.from_config(new_key()).open(sealed, "channel:1:1")


def test_malformed_keys_are_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing.from_config("c2hvcnQ")
