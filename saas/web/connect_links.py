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
from saas.channels import bluesky as bluesky_connect
from saas.channels import connect_links
from saas.channels import mastodon as mastodon_connect
from saas.channels import oauth as oauth_connect
from saas.channels.models import Channel
from saas.web.forms import BlueskyConnectForm, ConfirmForm, MastodonConnectForm
from saas.web.offsite import continue_to
from saas.web.signins import (
    PENDING_MASTODON,
    PENDING_OAUTH,
    PICK_OAUTH,
    STARTED_FROM,
    mastodon_redirect_uri,
    oauth_redirect_uri,
)
from tenants import tenant_session

bp = Blueprint("connect_links", __name__, url_prefix="/connect")


def _grant(token: str) -> connect_links.Grant:
    try:
        return connect_links.grant_for(token, datetime.now(UTC))
    except connect_links.LinkProblem as exc:
        abort(_problem(str(exc)))


def _problem(message: str) -> Any:
    return make_response(render_template("review/problem.html", message=message), 404)


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
        url, pending = oauth_connect.start(grant.slug, network, oauth_redirect_uri())
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
            pending, grant.slug, request.args.get("state", ""), request.args.get("code", ""), oauth_redirect_uri()
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


REFUSALS = (oauth_connect.ConnectRefused, mastodon_connect.ConnectRefused, PublisherError, connect_links.LinkProblem)


def _connect(grant: connect_links.Grant, name: str, connect: Callable[[so.Session], list[Channel]]) -> Any:
    """Store the accounts and spend the link in one transaction: a link spent meanwhile stores nothing."""
    try:
        with tenant_session(grant.tenant_id) as db_session:
            connect_links.use(db_session, grant.link_id, datetime.now(UTC))
            handles = ", ".join("@" + c.handle for c in connect(db_session))
            db_session.commit()
    except REFUSALS as exc:
        return _problem(getattr(exc, "message", str(exc)))
    return render_template("channels/connect_link_done.html", grant=grant, name=name, handles=handles)


# -- Mastodon (the person's own server) and Bluesky (an app password typed here, never seen by the agency) --


@bp.route("/<token>/mastodon", methods=["GET", "POST"])
def mastodon(token: str) -> Any:
    grant = _grant(token)
    form = MastodonConnectForm()
    if form.validate_on_submit():
        try:
            with tenant_session(grant.tenant_id) as db_session:
                url, pending = mastodon_connect.start(
                    db_session, grant.slug, form.instance.data or "", mastodon_redirect_uri()
                )
                db_session.commit()  # the app registration, kept whether or not the person approves
        except (mastodon_connect.ConnectRefused, PublisherError) as exc:
            form.instance.errors = [getattr(exc, "message", str(exc))]
        else:
            session[PENDING_MASTODON] = pending.to_session()
            session[STARTED_FROM] = token
            return continue_to(url, "Mastodon")
    local = current_app.config["MASTODON_LOCAL_URL"]
    back = url_for("connect_links.page", token=token)
    page = render_template("channels/mastodon.html", form=form, local=local, workspace=grant.workspace, back=back)
    return page, 422 if form.errors else 200


@bp.get("/<token>/mastodon/finish")
def mastodon_finish(token: str) -> Any:
    grant = _grant(token)
    pending = mastodon_connect.Pending.from_session(session.pop(PENDING_MASTODON, None))
    session.pop(STARTED_FROM, None)
    state, code = request.args.get("state", ""), request.args.get("code", "")
    redirect_uri = mastodon_redirect_uri()
    return _connect(
        grant, "Mastodon", lambda s: [mastodon_connect.finish(s, pending, grant.slug, state, code, redirect_uri)]
    )


@bp.route("/<token>/bluesky", methods=["GET", "POST"])
def bluesky(token: str) -> Any:
    grant = _grant(token)
    form = BlueskyConnectForm(data={"pds_url": bluesky_connect.default_pds()})
    if form.validate_on_submit():
        identifier, password, pds = form.identifier.data or "", form.app_password.data or "", form.pds_url.data or ""
        try:
            with tenant_session(grant.tenant_id) as db_session:
                connect_links.use(db_session, grant.link_id, datetime.now(UTC))
                channel = bluesky_connect.connect(db_session, identifier, password, pds)
                db_session.commit()
        except PublisherError as exc:
            form.app_password.errors = [exc.message]
        except connect_links.LinkProblem as exc:
            return _problem(str(exc))
        else:
            handles = "@" + channel.handle
            return render_template("channels/connect_link_done.html", grant=grant, name="Bluesky", handles=handles)
    local = current_app.config["BLUESKY_LOCAL_PDS_URL"]
    back = url_for("connect_links.page", token=token)
    page = render_template("channels/bluesky.html", form=form, local=local, workspace=grant.workspace, back=back)
    return page, 422 if form.errors else 200
