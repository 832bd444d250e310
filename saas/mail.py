"""Outgoing email: SMTP when MAIL_URL is set, otherwise one .eml file per message under MAIL_DIR."""

from __future__ import annotations

import logging
import smtplib
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app, render_template

log = logging.getLogger(__name__)


def send(to: str, subject: str, template: str, **context: object) -> EmailMessage:
    """Render `emails/<template>.txt` with `context` and send it to one address."""
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="multipost.localhost")
    message.set_content(render_template(f"emails/{template}.txt", **context))
    mail_url = current_app.config["MAIL_URL"]
    if mail_url:
        _send_smtp(mail_url, message)
    else:
        path = _write_eml(Path(current_app.config["MAIL_DIR"]), message)
        log.info("mail to %s (%s) written to %s", to, subject, path)
    return message


def _send_smtp(mail_url: str, message: EmailMessage) -> None:
    url = urlsplit(mail_url)
    use_ssl = url.scheme == "smtps"
    port = url.port or (465 if use_ssl else 587)
    smtp_class = smtplib.SMTP_SSL if use_ssl else smtplib.SMTP
    with smtp_class(url.hostname or "localhost", port, timeout=30) as smtp:
        if not use_ssl and url.scheme != "smtp+plain":
            smtp.starttls()
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(message)


def _write_eml(mail_dir: Path, message: EmailMessage) -> Path:
    mail_dir.mkdir(parents=True, exist_ok=True)
    # A sortable, unique name: the newest message is the last one listed.
    path = mail_dir / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
    path.write_bytes(bytes(message))
    return path


def link(endpoint: str, **values: object) -> str:
    """An absolute link for an email, built on PUBLIC_BASE_URL (never the request's Host header).

    Works outside a request too (workers send mail): every URL value must be given.
    """
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_BASE_URL"] + path
