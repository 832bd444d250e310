"""Tell a person by email when their account's protection changed, so an intruder's change does not go unseen."""

from __future__ import annotations

from saas import mail
from tenants.models import User


def send(user: User, what: str) -> None:
    """One short message to the account's address: `what` happened, and what to do if it was not them."""
    mail.send(
        user.email,
        f"Multipost security notice: {what}",
        "security_notice",
        user=user,
        what=what,
        sessions=mail.link("account.sessions_page"),
        reset=mail.link("auth.reset_request"),
    )
