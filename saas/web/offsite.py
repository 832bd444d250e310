"""Sending the browser to another site (a network's sign-in page) after one of our forms.

Our Content-Security-Policy says `form-action 'self'`, and browsers apply it to every redirect that
follows a form's POST: a 302 from the POST to a network's authorize URL is blocked, silently. So the
POST answers with a short page and a `Refresh` header (a new navigation, not part of the form's),
with a link for browsers that do not follow it.
"""

from __future__ import annotations

from typing import Any

from flask import make_response, render_template


def continue_to(url: str, site: str) -> Any:
    """A page that takes the browser on to `url` on `site` (a name people recognise: "Mastodon", "LinkedIn")."""
    response = make_response(render_template("offsite.html", url=url, site=site))
    response.headers["Refresh"] = f"0; url={url}"
    return response
