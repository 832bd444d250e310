"""The workspace's channels: what is connected, its health, and each network's connect flow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from publishers.errors import PublisherError
from saas import db, mail
from saas.channels import bluesky as bluesky_connect
from saas.channels import connect_links, service
from saas.channels import mastodon as mastodon_connect
from saas.channels import oauth as oauth_connect
from saas.channels.models import Channel
from saas.sandbox import connect as sandbox_connect
from saas.security import TEAM_MANAGERS, require_role
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
from tenants.models import Role

bp = Blueprint("channels", __name__, url_prefix="/channels")
# Mastodon registers one redirect URI per instance for every workspace, so the instance sends people
# to this workspace-less address; it only forwards them to the workspace that started the sign-in.
callbacks = Blueprint("channel_callbacks", __name__)


@bp.get("")
def index() -> Any:
    return render_template(
        "channels/index.html",
        channels=service.channels(db.session()),
        confirm=ConfirmForm(formdata=None),
        can_manage=g.workspace.role in TEAM_MANAGERS,
        oauth_networks=oauth_connect.NETWORKS,
    )


@bp.post("/sandbox")
@require_role(*TEAM_MANAGERS)
def add_sandbox() -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    channel = sandbox_connect.connect_new_account(db.session(), g.workspace.name)
    db.session.commit()
    flash(f"Connected the Sandbox account @{channel.handle}.", "success")
    return redirect(url_for("workspace.channels.index"))


@bp.post("/<int:channel_id>/reconnect")
@require_role(*TEAM_MANAGERS)
def reconnect(channel_id: int) -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    channel = db.session.get(Channel, channel_id)
    if channel is None:
        abort(404)
    if channel.network == "mastodon":
        instance = (service.load_credentials(channel).extra.get("instance_url") or "").removeprefix("https://")
        return redirect(url_for("workspace.channels.mastodon", instance=instance))
    if channel.network == "bluesky":
        return redirect(url_for("workspace.channels.bluesky", identifier=channel.handle))
    if channel.network in oauth_connect.NETWORKS:
        return _start_oauth(channel.network)
    if channel.network != "sandbox":
        flash(f"Reconnecting {channel.network} channels arrives with that network's connect flow.", "error")
        return redirect(url_for("workspace.channels.index"))
    sandbox_connect.reconnect(db.session(), channel)
    db.session.commit()
    flash(f"@{channel.handle} is connected again. Blocked posts can now be tried again.", "success")
    return redirect(url_for("workspace.channels.index"))


def _refused(network: str, message: str) -> Any:
    return render_template("channels/connect_refused.html", network=network, message=message), 400


@bp.route("/mastodon", methods=["GET", "POST"])
@require_role(*TEAM_MANAGERS)
def mastodon() -> Any:
    form = MastodonConnectForm(data={"instance": request.args.get("instance", "")})
    if form.validate_on_submit():
        try:
            url, pending = mastodon_connect.start(
                db.session(), g.workspace.slug, form.instance.data or "", mastodon_redirect_uri()
            )
        except (mastodon_connect.ConnectRefused, PublisherError) as exc:
            form.instance.errors = [getattr(exc, "message", str(exc))]
        else:
            db.session.commit()  # the app registration, kept whether or not the person approves
            session[PENDING_MASTODON] = pending.to_session()
            return continue_to(url, "Mastodon")
    status = 422 if form.errors else 200
    local = current_app.config["MASTODON_LOCAL_URL"]
    back = url_for("workspace.channels.index")
    return render_template(
        "channels/mastodon.html", form=form, local=local, workspace=g.workspace.name, back=back
    ), status


@bp.get("/mastodon/callback")
@require_role(*TEAM_MANAGERS)
def mastodon_finish() -> Any:
    pending = mastodon_connect.Pending.from_session(session.pop(PENDING_MASTODON, None))
    try:
        channel = mastodon_connect.finish(
            db.session(),
            pending,
            g.workspace.slug,
            request.args.get("state", ""),
            request.args.get("code", ""),
            mastodon_redirect_uri(),
        )
    except (mastodon_connect.ConnectRefused, PublisherError) as exc:
        db.session.rollback()
        return _refused("Mastodon", getattr(exc, "message", str(exc)))
    db.session.commit()
    flash(f"Connected the Mastodon account @{channel.handle}.", "success")
    return redirect(url_for("workspace.channels.index"))


@callbacks.get("/channels/mastodon/callback")
def mastodon_callback() -> Any:
    pending = mastodon_connect.Pending.from_session(session.get(PENDING_MASTODON))
    link_token = session.get(STARTED_FROM)
    if pending is not None and link_token:
        args = {k: v for k, v in request.args.items() if k in ("code", "state", "error")}
        return redirect(url_for("connect_links.mastodon_finish", token=link_token, **args))
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    return _forward_callback(PENDING_MASTODON, pending.workspace if pending else None, "mastodon_finish", "Mastodon")


def _forward_callback(key: str, workspace: str | None, endpoint: str, network: str) -> Any:
    """Send the network's callback on to the workspace that started the sign-in (its state is checked there)."""
    if workspace is None:
        session.pop(key, None)
        message = "This sign-in did not start here, or it was already used. Start again from the Channels page."
        return _refused(network, message)
    args = {k: v for k, v in request.args.items() if k in ("code", "state", "error")}
    return redirect(url_for(f"workspace.channels.{endpoint}", slug=workspace, **args))


@bp.route("/bluesky", methods=["GET", "POST"])
@require_role(*TEAM_MANAGERS)
def bluesky() -> Any:
    form = BlueskyConnectForm(
        data={"identifier": request.args.get("identifier", ""), "pds_url": bluesky_connect.default_pds()}
    )
    if form.validate_on_submit():
        try:
            channel = bluesky_connect.connect(
                db.session(), form.identifier.data or "", form.app_password.data or "", form.pds_url.data or ""
            )
        except PublisherError as exc:
            db.session.rollback()
            form.app_password.errors = [exc.message]
        else:
            db.session.commit()
            flash(f"Connected the Bluesky account @{channel.handle}.", "success")
            return redirect(url_for("workspace.channels.index"))
    status = 422 if form.errors else 200
    local = current_app.config["BLUESKY_LOCAL_PDS_URL"]
    back = url_for("workspace.channels.index")
    return render_template(
        "channels/bluesky.html", form=form, local=local, workspace=g.workspace.name, back=back
    ), status


# -- X, LinkedIn, Facebook Pages, Instagram, Threads: one OAuth flow ------------------------------------------------


def _start_oauth(network: str) -> Any:
    try:
        url, pending = oauth_connect.start(g.workspace.slug, network, oauth_redirect_uri())
    except oauth_connect.ConnectRefused as exc:
        return _refused("The channel", str(exc))
    session[PENDING_OAUTH] = pending.to_session()
    return continue_to(url, oauth_connect.NETWORKS[network])


@bp.post("/connect")
@require_role(*TEAM_MANAGERS)
def oauth_start() -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _start_oauth(request.form.get("network", ""))


@bp.get("/connect/callback")
@require_role(*TEAM_MANAGERS)
def oauth_finish() -> Any:
    pending = oauth_connect.Pending.from_session(session.pop(PENDING_OAUTH, None))
    name = oauth_connect.NETWORKS.get(pending.network if pending else "", "The network")
    try:
        accounts = oauth_connect.finish(
            pending,
            g.workspace.slug,
            request.args.get("state", ""),
            request.args.get("code", ""),
            oauth_redirect_uri(),
        )
    except (oauth_connect.ConnectRefused, PublisherError) as exc:
        return _refused(name, getattr(exc, "message", str(exc)))
    assert pending is not None
    if len(accounts) == 1 and accounts[0].kind == "account":
        channel = oauth_connect.connect(db.session(), pending.network, accounts[0])
        db.session.commit()
        flash(f"Connected the {name} account @{channel.handle}.", "success")
        return redirect(url_for("workspace.channels.index"))
    session[PICK_OAUTH] = oauth_connect.offer(g.workspace.slug, pending.network, accounts)
    return redirect(url_for("workspace.channels.oauth_pick"))


@bp.route("/connect/pick", methods=["GET", "POST"])
@require_role(*TEAM_MANAGERS)
def oauth_pick() -> Any:
    pick_id = session.get(PICK_OAUTH)
    try:
        network, accounts = oauth_connect.offered(g.workspace.slug, pick_id)
    except oauth_connect.ConnectRefused as exc:
        return _refused("The channel", str(exc))
    name = oauth_connect.NETWORKS[network]
    error = None
    if request.method == "POST":
        if not ConfirmForm().validate_on_submit():
            abort(400)
        try:
            channels = oauth_connect.take(db.session(), g.workspace.slug, pick_id, request.form.getlist("account"))
        except oauth_connect.ConnectRefused as exc:
            error = str(exc)
        else:
            db.session.commit()
            session.pop(PICK_OAUTH, None)
            flash(f"Connected {', '.join('@' + c.handle for c in channels)} on {name}.", "success")
            return redirect(url_for("workspace.channels.index"))
    page = render_template(
        "channels/pick.html",
        name=name,
        accounts=accounts,
        error=error,
        confirm=ConfirmForm(formdata=None),
        workspace=g.workspace.name,
        cancel_url=url_for("workspace.channels.index"),
        cancel_label="Cancel and go back to Channels",
    )
    return page, 422 if error else 200


@callbacks.get("/channels/oauth/callback")
def oauth_callback() -> Any:
    """One redirect URI per network app for every workspace: forward to the workspace that started the sign-in,
    or to the connect link it was started from (no login there: the link is the permission)."""
    pending = oauth_connect.Pending.from_session(session.get(PENDING_OAUTH))
    link_token = session.get(STARTED_FROM)
    if pending is not None and link_token:
        args = {k: v for k, v in request.args.items() if k in ("code", "state", "error")}
        return redirect(url_for("connect_links.finish", token=link_token, **args))
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    return _forward_callback(PENDING_OAUTH, pending.workspace if pending else None, "oauth_finish", "The channel")


@bp.post("/connect-link")
@require_role(Role.OWNER, Role.ADMIN, Role.EDITOR)
def send_connect_link() -> Any:
    """Email a link through which the client connects its own account here: no password changes hands."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    now = datetime.now(UTC)
    try:
        raw = connect_links.create(db.session(), request.form.get("email", ""), current_user.id, now)
    except connect_links.LinkProblem as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.channels.index"))
    address = request.form.get("email", "").strip().lower()
    mail.send(
        address,
        f"Connect your account to {g.workspace.name}",
        "connect_link",
        sender=g.workspace.agency_name or current_user.name,
        workspace=g.workspace.name,
        link=mail.link("connect_links.page", token=raw),
        expires_at=now + connect_links.LIFETIME,
    )
    db.session.commit()
    flash(f"Sent a connect link to {address}. It works once, for 7 days.", "success")
    return redirect(url_for("workspace.channels.index"))
