"""One record per API operation, which both runs the request and writes the OpenAPI document.

`@api.operation("POST", "/posts", body=PostCreate, response=PostOut, scope=Scope.WRITE)` registers a view.
The same record validates the query and body with its pydantic models, checks the token's scope and the
person's role, and becomes the operation in `/api/v1/openapi.json`, so the document cannot drift from
what the code accepts. Every workspace operation is served twice: for the token's own workspace, and
under `/clients/{client_id}` for the clients an agency token may act on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy.orm as so
from flask import Blueprint, Response, g, request
from pydantic import BaseModel, ValidationError

from saas import audit, db
from saas.api import idempotency
from saas.api.models import Scope
from saas.api.problems import MEDIA_TYPE, TITLES, Problem, from_validation, invalid
from saas.api.tokens import ClientUnreachable, Grant, authenticate
from saas.ratelimit import api_hit
from tenants import bind_tenant
from tenants.models import Role

CLIENT_PREFIX = "/clients/{client_id}"
# An operation's tag → the audit log's kind of change (saas.audit.KINDS), for its filter.
AUDIT_KINDS = {
    "Posts": "posts",
    "Queue": "posts",
    "Tags": "posts",
    "Approvals": "approvals",
    "Channels": "channels",
    "Media": "media",
    "Members": "members",
    "Workspace": "settings",
    "Clients (agency)": "agency",
}
MAX_BODY = 1_000_000  # JSON bodies; media uploads have their own limit


@dataclass
class Call:
    """What a view gets: who is asking, and the validated query and body."""

    grant: Grant
    query: Any = None
    body: Any = None
    if_match: str | None = None
    files: Any = None

    @property
    def workspace(self) -> Any:
        return self.grant.workspace


@dataclass(frozen=True)
class Reply:
    # A model, or (for the hottest answers, saas.api.posts.post_out) its JSON values already in the model's shape.
    body: BaseModel | dict[str, Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Work that must follow the commit (it talks to another system), never run for a change rolled back.
    after_commit: Callable[[], Any] | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI form: /posts/{post_id}
    view: Callable[..., Any]
    summary: str
    tag: str
    scope: Scope
    roles: tuple[Role, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    multipart: dict[str, Any] | None = None  # the form's JSON Schema, for uploads
    versioned: bool = False  # takes If-Match
    own_workspace_only: bool = False  # not repeated under /clients/{client_id}
    description: str = ""

    @property
    def operation_id(self) -> str:
        return self.view.__name__


def _flask_path(path: str) -> str:
    out = path
    for name in _path_params(path):
        out = out.replace("{" + name + "}", f"<int:{name}>" if name.endswith("_id") else f"<{name}>")
    return out


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


class Api:
    def __init__(self) -> None:
        self.operations: list[Operation] = []
        self._installed: set[str] = set()

    def operation(self, method: str, path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(view: Callable[..., Any]) -> Callable[..., Any]:
            self.operations.append(Operation(method, path, view, **options))
            return view

        return register

    def served(self) -> list[tuple[Operation, str]]:
        """Every (operation, path) the API answers, client-scoped copies included."""
        pairs = [(op, op.path) for op in self.operations]
        pairs += [(op, CLIENT_PREFIX + op.path) for op in self.operations if not op.own_workspace_only]
        return pairs

    def install(self, bp: Blueprint) -> None:
        """Add every operation's route to `bp`, once: a blueprint is shared by every app made in this process."""
        if bp.name in self._installed:
            return
        self._installed.add(bp.name)
        for op, path in self.served():
            endpoint = op.operation_id + ("_for_client" if path.startswith(CLIENT_PREFIX) else "")
            bp.add_url_rule(_flask_path(path), endpoint, _handler(op), methods=[op.method])


api = Api()


def _handler(op: Operation) -> Callable[..., Any]:
    def handle(**values: Any) -> Response:
        return _run(op, values)

    handle.__name__ = op.operation_id
    return handle


def _run(op: Operation, values: dict[str, Any]) -> Response:
    client_id = values.pop("client_id", None)
    grant = _authenticated(client_id)
    g.api_grant = grant
    g.api_operation = op
    _count_request(grant)
    if op.scope not in grant.scopes:
        raise Problem(403, f"This token does not have the {op.scope.value} scope.", kind="scope")
    if op.roles and grant.workspace.role not in op.roles:
        roles = ", ".join(r.value for r in op.roles)
        raise Problem(
            403, f"This needs the role {roles} in the workspace; the token's person is {grant.workspace.role}."
        )
    session = db.session()
    bind_tenant(session, grant.workspace.tenant_id)  # the first wall, as under /w/<slug>/
    g.workspace = grant.workspace
    call = Call(grant, if_match=request.headers.get("If-Match"))
    if op.query is not None:
        call.query = _validated(op.query, _query_args(op.query))
    fingerprint = ""
    if op.multipart is not None:
        call.files, fingerprint = _form()
    elif op.body is not None:
        raw = _json_body()
        fingerprint = json.dumps(raw, sort_keys=True)
        # Strict JSON: `true` is no channel id and "5" no number; times still come as RFC 3339 strings.
        call.body = _validated(op.body, request.get_data(cache=True), json_mode=True)
    key = request.headers.get("Idempotency-Key") if op.method == "POST" else None
    if key is not None:
        key = key.strip()
        if not key or len(key) > 255 or not key.isprintable():
            raise invalid("Idempotency-Key", "Send a key of 1 to 255 printable characters.")
        digest = hashlib.sha256(f"{op.method} {request.path}\n{fingerprint}".encode()).hexdigest()
        replay = idempotency.begin(session, grant.token_id, key, digest)
        if replay is not None:
            session.rollback()
            return replay
    try:
        reply = _as_reply(op.view(call, **values), op)
        response = _response(reply)
        if key is not None:
            idempotency.finish(session, grant.token_id, key, response)
        if op.method != "GET":
            _record_change(session, grant, op)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    g.pop("audit_changed", None)  # recorded above, with the change
    if reply.after_commit is not None:
        reply.after_commit()
    return response


def _record_change(session: so.Session, grant: Grant, op: Operation) -> None:
    """Write who changed what (saas.audit) in the transaction of the change: both are kept, or neither."""
    session.flush()
    changed_elsewhere = g.pop("audit_changed", False)  # a service committed part of it in its own session
    if session.info.get("audit_pending") or changed_elsewhere:
        action = f"API: {op.summary} (token “{grant.token_name}”)"
        kind = AUDIT_KINDS.get(op.tag, "other")
        audit.record(
            session, grant.workspace, grant.user_id, grant.user_name, None, request.path, action=action, kind=kind
        )


def _authenticated(client_id: int | None) -> Grant:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Problem(
            401,
            "Send an API token as `Authorization: Bearer mp_…` (make one under Settings → API tokens).",
            headers={"WWW-Authenticate": 'Bearer realm="multipost"'},
        )
    try:
        grant = authenticate(raw.strip(), client_id)
    except ClientUnreachable:
        raise Problem(404, "There is no client with this id that this token may act on.") from None
    if grant is None:
        raise Problem(
            401,
            "This API token is not valid: it was revoked, or its person left the workspace.",
            headers={"WWW-Authenticate": 'Bearer realm="multipost", error="invalid_token"'},
        )
    return grant


def _count_request(grant: Grant) -> None:
    budget = api_hit(grant.token_id)
    g.api_ratelimit = {
        "RateLimit-Limit": str(budget.limit),
        "RateLimit-Remaining": str(budget.remaining),
        "RateLimit-Reset": str(budget.reset_seconds),
    }
    if not budget.allowed:
        raise Problem(
            429,
            f"This token made more than {budget.limit} requests in its window; try again in {budget.reset_seconds} s.",
            headers={"Retry-After": str(budget.reset_seconds)},
        )


def _json_body() -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Problem(413, f"Send at most {MAX_BODY:,} bytes of JSON.")
    if not request.is_json:
        raise Problem(415, "Send the body as application/json.")
    try:
        raw = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "The body is not valid JSON.") from None
    _check_text(raw, "")
    return raw


def _check_text(value: Any, where: str) -> None:
    """Refuse text PostgreSQL cannot store (NUL, lone surrogates), naming where it is, instead of failing later."""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(where or "body", "Text may not contain NUL characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(where or "body", "Text must be valid Unicode (no lone surrogates).") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, where)
            _check_text(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_text(v, f"{where}.{i}" if where else str(i))


def _query_args(model: type[BaseModel]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        alias = info.alias or name
        values = request.args.getlist(alias)
        if not values:
            continue
        for value in values:
            _check_text(value, alias)
        args[alias] = values[-1]  # no operation takes a list in its query
    unknown = set(request.args) - {info.alias or name for name, info in model.model_fields.items()}
    if unknown:
        raise Problem(
            422,
            "Unknown query parameters.",
            errors=[{"field": name, "message": "Unknown query parameter."} for name in sorted(unknown)],
        )
    return args


def _form() -> tuple[Any, str]:
    if not request.mimetype.startswith("multipart/form-data"):
        raise Problem(415, "Upload the file as multipart/form-data with a `file` part.")
    for name, value in request.form.items():
        _check_text(value, name)
    upload = request.files.get("file")
    data = upload.read() if upload is not None else b""
    form = {k: v for k, v in request.form.items()}
    fingerprint = json.dumps(form, sort_keys=True) + hashlib.sha256(data).hexdigest()
    return {"form": form, "filename": upload.filename if upload is not None else None, "data": data}, fingerprint


def _validated(model: type[BaseModel], raw: Any, json_mode: bool = False) -> Any:
    try:
        return model.model_validate_json(raw, strict=True) if json_mode else model.model_validate(raw)
    except ValidationError as exc:
        raise from_validation(exc) from None


def _as_reply(result: Any, op: Operation) -> Reply:
    if isinstance(result, Reply):
        return result
    if result is None:
        return Reply(None, 204)
    return Reply(result, op.status)


def _response(reply: Reply) -> Response:
    if reply.body is None:
        response = Response(status=reply.status)
    elif isinstance(reply.body, BaseModel):  # serialised by pydantic-core directly, without a dict in between
        response = Response(reply.body.model_dump_json(by_alias=True), status=reply.status, mimetype="application/json")
    else:
        response = Response(orjson.dumps(reply.body), status=reply.status, mimetype="application/json")
    response.headers.update(reply.headers)
    return response


# ---------------------------------------------------------------------------------------------------------------
# The OpenAPI document


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str = "validation") -> dict[str, Any]:
        schema = model.model_json_schema(by_alias=True, mode=mode, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
        self.schemas.update(schema.pop("$defs", {}))
        self.schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def parameters(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        self.schemas.update(schema.pop("$defs", {}))
        required = set(schema.get("required", ()))
        params = []
        for name, prop in schema.get("properties", {}).items():
            description = prop.pop("description", "")
            prop.pop("title", None)
            # A query string cannot say null: an optional parameter is simply left out.
            options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
            if len(options) == 1:
                prop.update(options[0])
            elif options:
                prop["anyOf"] = options
            if prop.get("default", 0) is None:
                del prop["default"]
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if prop.get("type") == "array":
                param.update(style="form", explode=True)
            if description:
                param["description"] = description
            params.append(param)
        return params


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": TITLES.get(status, "Error"),
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "integer"}}
    for name, text in (
        ("RateLimit-Limit", "Requests this token may make per window."),
        ("RateLimit-Remaining", "Requests left in the current window."),
        ("RateLimit-Reset", "Seconds until the window starts again."),
    )
}


def openapi_document(title: str, version: str, problem_model: type[BaseModel]) -> dict[str, Any]:
    components = _Components()
    components.ref(problem_model, "serialization")
    paths: dict[str, Any] = {}
    for op, path in api.served():
        for_client = path.startswith(CLIENT_PREFIX)
        operation: dict[str, Any] = {
            "operationId": op.operation_id + ("_for_client" if for_client else ""),
            "summary": op.summary + (" (in a client of the agency)" if for_client else ""),
            "tags": [op.tag],
            "description": (op.description + "\n\n" if op.description else "")
            + f"Scope: `{op.scope.value}`."
            + (f" Role: {', '.join(r.value for r in op.roles)}." if op.roles else ""),
            "parameters": [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
                    if name.endswith("_id")
                    else {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[^/]+$"},
                }
                for name in _path_params(path)
            ],
        }
        if op.query is not None:
            operation["parameters"] += components.parameters(op.query)
        if op.method == "POST":
            operation["parameters"].append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Send the same key to repeat a request safely: the first answer is replayed. "
                    "The same key with another body is refused (422).",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
                }
            )
        if op.versioned:
            operation["parameters"].append(
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "description": "The ETag from your last read; a stale one is refused with 412.",
                    "schema": {"type": "string", "pattern": "^[!-~]+$", "maxLength": 64},
                }
            )
        if op.multipart is not None:
            operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": op.multipart}}}
        elif op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": components.ref(op.body)}},
            }
        success: dict[str, Any] = {"description": "Done.", "headers": RATE_HEADERS}
        if op.response is not None and op.status != 204:
            success["content"] = {"application/json": {"schema": components.ref(op.response, "serialization")}}
        errors = {400, 401, 403, 404, 422, 429}
        if op.method in ("POST", "PATCH", "PUT"):
            errors |= {409, 413, 415}
        if op.versioned:
            errors |= {412}
        operation["responses"] = {str(op.status): success, **{str(s): _problem_response(s) for s in sorted(errors)}}
        paths.setdefault(path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Schedule and manage posts programmatically. Human-readable guide: /api/docs.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from Settings → API tokens (`mp_…`).",
                }
            },
        },
    }
