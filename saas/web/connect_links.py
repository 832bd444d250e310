"""/connect/<token>: the client connects its own account to a workspace through a link the agency sent.

No login: the link is the permission, for one workspace, once. The network's sign-in comes back to the
shared OAuth callback, which hands it to `finish` here when the sign-in was started from a link.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy.orm as so
from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, session, url_for

from publishers.errors import PublisherError
from saas.channels import connect_links
from saas.channels import oauth as oauth_connect
from saas.channels.models import Channel
from saas.web.forms import ConfirmForm
from saas.web.offsite import continue_to
from tenants import tenant_session

bp = Blueprint("connect_links", __name__, url_prefix="/connect")

PENDING_OAUTH = "oauth_connect"  # the same keys as the Channels page: one sign-in at a time per browser
PICK_OAUTH = "oauth_pick"
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
    except (oauth_connect.ConnectRefused, PublisherError) as exc:
        return _problem(getattr(exc, "message", str(exc)))
    assert pending is not None
    if len(accounts) == 1 and accounts[0].kind == "account":
        return _connect(
            grant, name, lambda db_session: [oauth_connect.connect(db_session, pending.network, accounts[0])]
        )
    # Several Pages or organisations: the person picks which ones this workspace may publish to.
    session[PICK_OAUTH] = oauth_connect.offer(grant.slug, pending.network, accounts)
    return redirect(url_for("connect_links.pick", token=token))


@bp.route("/<token>/pick", methods=["GET", "POST"])
def pick(token: str) -> Any:
    grant = _grant(token)
    pick_id = session.get(PICK_OAUTH)
    try:
        network, accounts = oauth_connect.offered(grant.slug, pick_id)
    except oauth_connect.ConnectRefused as exc:
        return _problem(str(exc))
    name = oauth_connect.NETWORKS[network]
    error = None
    if request.method == "POST":
        if not ConfirmForm().validate_on_submit():
            abort(400)
        chosen = request.form.getlist("account")
        if chosen:
            done = _connect(grant, name, lambda db_session: oauth_connect.take(db_session, grant.slug, pick_id, chosen))
            session.pop(PICK_OAUTH, None)
            return done
        error = "Tick at least one account to connect."
    page = render_template(
        "channels/pick.html",
        name=name,
        accounts=accounts,
        error=error,
        confirm=ConfirmForm(formdata=None),
        workspace=grant.workspace,
        cancel_url=url_for("connect_links.page", token=token),
        cancel_label="Cancel and start again",
    )
    return page, 422 if error else 200


def _connect(grant: connect_links.Grant, name: str, connect: Callable[[so.Session], list[Channel]]) -> Any:
    """Store the accounts and spend the link in one transaction: a link spent meanwhile stores nothing."""
    try:
        with tenant_session(grant.tenant_id) as db_session:
            connect_links.use(db_session, grant.link_id, datetime.now(UTC))
            handles = ", ".join("@" + c.handle for c in connect(db_session))
            db_session.commit()
    except (oauth_connect.ConnectRefused, connect_links.LinkProblem) as exc:
        return _problem(str(exc))
    return render_template("channels/connect_link_done.html", grant=grant, name=name, handles=handles)
