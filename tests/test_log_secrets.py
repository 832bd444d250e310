"""The suite-wide log scan (tests/conftest.py) recognises the secrets it is meant to catch."""

from __future__ import annotations

import logging

from tests.conftest import KNOWN_SECRETS, MAILED_TOKEN, leaked_secrets
from tests.factories import PASSWORD
from tests.fakes import tokens


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
