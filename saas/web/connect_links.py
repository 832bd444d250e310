"""/connect/<token>: the client connects its own account to a workspace through a link the agency sent.

No login: the link is the permission, for one workspace, once. The network's sign-in comes back to the
shared OAuth callback, which hands it to `finish` here when the sign-in was started from a link.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, make_response, render_template, request, session, url_for

from publishers.errors import PublisherError
from saas import audit
from saas.channels import connect_links
from saas.channels import oauth as oauth_connect
from saas.channels.models import ConnectLink
from saas.web.forms import ConfirmForm
from saas.web.offsite import continue_to
from tenants import tenant_session

bp = Blueprint("connect_links", __name__, url_prefix="/connect")

PENDING_OAUTH = "oauth_connect"  # the same key as the Channels page: one sign-in at a time per browser
STARTED_FROM = "connect_link"


def _grant(token: str) -> connect_links.Grant:
    try:
        return connect_links.grant_for(token, datetime.now(UTC))
    except connect_links.LinkProblem as exc:
        abort(_problem(str(exc)))


def _problem(message: str) -> Any:
    return make_response(render_template("review/problem.html", message=message), 404)


def _redirect_uri() -> str:
    return current_app.config["PUBLIC_BASE_URL"] + url_for("channel_callbacks.oauth_callback")


@bp.get("/<token>")
def page(token: str) -> Any:
    grant = _grant(token)
    return render_template("channels/connect_link.html", grant=grant, token=token, networks=oauth_connect.NETWORKS)


@bp.post("/<token>/start")
def start(token: str) -> Any:
    grant = _grant(token)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    network = request.form.get("network", "")
    if network not in oauth_connect.NETWORKS:
        abort(404)
    try:
        url, pending = oauth_connect.start(grant.slug, network, _redirect_uri())
    except oauth_connect.ConnectRefused as exc:
        return _problem(str(exc))
    session[PENDING_OAUTH] = pending.to_session()
    session[STARTED_FROM] = token
    return continue_to(url, oauth_connect.NETWORKS[network])


@bp.get("/<token>/finish")
def finish(token: str) -> Any:
    grant = _grant(token)
    pending = oauth_connect.Pending.from_session(session.pop(PENDING_OAUTH, None))
    session.pop(STARTED_FROM, None)
    name = oauth_connect.NETWORKS.get(pending.network if pending else "", "The network")
    try:
        accounts = oauth_connect.finish(
            pending, grant.slug, request.args.get("state", ""), request.args.get("code", ""), _redirect_uri()
        )
        assert pending is not None
        with tenant_session(grant.tenant_id) as db_session:
            connect_links.use(db_session, grant.link_id, datetime.now(UTC))
            # Everything this sign-in may publish to: the person chose the account on the network itself.
            channels = [oauth_connect.connect(db_session, pending.network, account) for account in accounts]
            handles = ", ".join("@" + c.handle for c in channels)
            audit.record_event(
                db_session,
                grant.tenant_id,
                actor_name=f"{db_session.get_one(ConnectLink, grant.link_id).email} (connect link)",
                action="Connected channels from a connect link",
                kind="channels",
                detail=f"Connected {handles} on {name}",
            )
            db_session.commit()
    except (oauth_connect.ConnectRefused, PublisherError, connect_links.LinkProblem) as exc:
        return _problem(getattr(exc, "message", str(exc)))
    return render_template("channels/connect_link_done.html", grant=grant, name=name, handles=handles)
