"""The suite-wide log scan (tests/conftest.py) recognises the secrets it is meant to catch."""

from __future__ import annotations

import logging

import httpx

from saas import logs
from tests.conftest import KNOWN_SECRETS, MAILED_TOKEN, leaked_secrets
from tests.factories import PASSWORD
from tests.fakes import tokens
from tests.live_server import serving


def test_the_scan_finds_fake_tokens_known_secrets_and_jwts():
    issued = tokens.issue(24, "sbx_at_")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkaWQ6cGxjOmFiYyJ9.c2lnbmF0dXJlLWJ5dGVz"
    lines = [
        f"publishers.http: sandbox answered 401: bad token {issued}",
        f"saas.accounts: login for ann@example.com with {PASSWORD}",
        f"publishers.http: bluesky session {jwt}",
        "saas.mail: mail to ann@example.com (Review 2 posts) written to var/mail/1.eml",
    ]
    assert leaked_secrets(lines, KNOWN_SECRETS) == lines[:3]


def test_link_tokens_are_read_from_mailed_links():
    body = "Review them here: http://localhost/review/Zx3_kq0Wm1b2n3v4c5x6z7a8s9d0f1g2h3j4k5l6m7\n"
    assert MAILED_TOKEN.findall(body) == ["Zx3_kq0Wm1b2n3v4c5x6z7a8s9d0f1g2h3j4k5l6m7"]


def test_records_of_this_run_are_captured(_no_secrets_in_logs):
    logging.getLogger("saas.test").info("a line the scan reads")
    assert _no_secrets_in_logs.lines[-1] == "saas.test: a line the scan reads"


def test_link_tokens_in_request_lines_are_redacted_from_access_logs(app, _no_secrets_in_logs):
    token = "Zx3_kq0Wm1b2n3v4c5x6z7a8s9d0f1g2h3j4k5l6m7"
    with serving(app, "access-log-check") as base_url:
        assert httpx.get(f"{base_url}/review/{token}").status_code == 404
        assert httpx.get(f"{base_url}/feeds/{token}.ics").status_code == 404
    request_lines = [line for line in _no_secrets_in_logs.lines if line.startswith("werkzeug:") and "GET /" in line]
    assert any("GET /review/[redacted] HTTP" in line for line in request_lines), request_lines
    assert any("GET /feeds/[redacted] HTTP" in line for line in request_lines), request_lines
    assert not any(token in line for line in _no_secrets_in_logs.lines)


def test_gunicorn_access_records_are_redacted_too():
    # gunicorn logs its access line with a dict of atoms as the record's args.
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(r)s" %(s)s', None, None)
    record.args = {"h": "127.0.0.1", "r": "GET /connect/abcdefghijklmnopqrstuvwxyz0123456789AB HTTP/1.1", "s": "200"}
    assert logs.RedactLinkTokens().filter(record)
    assert record.getMessage() == '127.0.0.1 "GET /connect/[redacted] HTTP/1.1" 200'
    assert logs.redact("GET /w/bluebell-bakery/posts/12 HTTP/1.1") == "GET /w/bluebell-bakery/posts/12 HTTP/1.1"
