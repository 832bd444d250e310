"""Mail goes out over SMTP when MAIL_URL is set, and to .eml files otherwise."""

from __future__ import annotations

from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from saas import create_app, mail
from saas.embedded import free_port


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


def test_sends_over_smtp_when_mail_url_is_set(app, smtp_server):
    port, inbox = smtp_server
    smtp_app = create_app(
        {k: app.config[k] for k in ("DATABASE_URL", "REDIS_URL")}
        | {"MAIL_URL": f"smtp+plain://127.0.0.1:{port}", "PUBLIC_BASE_URL": "https://app.example.com"}
        | {"PRODUCTION": False}
    )
    with smtp_app.test_request_context():
        mail.send(
            "someone@example.com",
            "Reset your Multipost password",
            "reset_password",
            user=type("U", (), {"name": "Someone", "email": "someone@example.com"}),
            link=mail.link("auth.reset_password", token="abc"),
        )
    [(sender, recipients, content)] = inbox.received
    message = message_from_bytes(content)
    assert recipients == ["someone@example.com"]
    assert "no-reply@multipost.localhost" in sender
    assert message["Subject"] == "Reset your Multipost password"
    assert "https://app.example.com/reset/abc" in message.get_payload()


def test_writes_eml_files_without_mail_url(app, outbox):
    with app.test_request_context():
        mail.send(
            "dev@example.com",
            "Confirm your email for Multipost",
            "verify_email",
            user=type("U", (), {"name": "Dev", "email": "dev@example.com"}),
            link="http://localhost/verify/x",
        )
    [message] = outbox.messages()
    assert message["To"] == "dev@example.com"
    assert "http://localhost/verify/x" in message.get_content()
