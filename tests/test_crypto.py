"""Channel credentials are sealed at rest, bound to their row, and re-sealed by key rotation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from publishers.base import Credentials, Profile
from saas.channels import service as channel_service
from saas.channels.models import Channel
from saas.crypto import DecryptionError, KeyRing, new_key
from tenants import system_session, tenant_session
from tests.factories import app_context, encryption_keys, make_workspace


def _connect(tenant, token="tok-" + "s3cret" * 4):
    with app_context(), tenant_session(tenant.id) as session:
        channel = channel_service.connect(
            session,
            "sandbox",
            Profile(remote_id=f"r{tenant.id}", handle="h", display_name="H"),
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


def test_rotate_keys_reseals_with_the_newest_key(app, runner=None):
    tenant, _ = make_workspace()
    channel = _connect(tenant)
    fresh = new_key()
    with encryption_keys(app, f"{fresh},{app.config['ENCRYPTION_KEYS']}"):
        result = app.test_cli_runner().invoke(args=["rotate-keys"])
        assert "1 channel(s)" in result.output
        with app_context(), tenant_session(tenant.id) as session:
            row = session.get(Channel, channel.id)
            assert row.credentials_sealed.split(".")[1] == KeyRing.key_id(KeyRing.from_config(fresh).keys[0])
            assert channel_service.load_credentials(row).access_token.startswith("tok-")
    # The old key can now be retired.
    with encryption_keys(app, fresh), app_context(), tenant_session(tenant.id) as session:
        assert channel_service.load_credentials(session.get(Channel, channel.id)).access_token.startswith("tok-")


def test_a_value_sealed_with_a_retired_key_says_so():
    ring = KeyRing.from_config(new_key())
    sealed = ring.seal(b"x", "channel:1:1")
    with pytest.raises(DecryptionError, match="no longer in ENCRYPTION_KEYS"):
        KeyRing.from_config(new_key()).open(sealed, "channel:1:1")


def test_malformed_keys_are_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing.from_config("c2hvcnQ")
