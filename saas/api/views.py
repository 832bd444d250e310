"""The /api/v1 blueprint: the registered operations, the OpenAPI document, the docs page, problem errors.

Only a bearer token authenticates here: the login cookie is never read, so no CSRF token is needed
(a cross-site form cannot set an Authorization header).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Flask, Response, g, json, render_template, request
from werkzeug.exceptions import HTTPException

from saas.api import posts, workspace  # noqa: F401  (their operations register on import)
from saas.api.problems import MEDIA_TYPE, Problem, for_status
from saas.api.registry import api, openapi_document
from saas.api.schemas import Problem as ProblemModel

VERSION = "1.0.0"

bp = Blueprint("api", __name__, url_prefix="/api/v1")
docs_bp = Blueprint("api_docs", __name__)


@cache
def openapi() -> dict[str, Any]:
    return openapi_document("Multipost API", VERSION, ProblemModel)


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return Response(json.dumps(openapi()), mimetype="application/json")


def type_name(schema: dict[str, Any]) -> str:
    """A JSON Schema as a reader says it: "string (date-time)", "array of integer", "PostState or null"."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(type_name(option) for option in schema["anyOf"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {type_name(schema.get('items', {}))}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    return kind


@docs_bp.get("/api/docs")
def docs() -> Any:
    document = openapi()
    return render_template(
        "api/docs.html", document=document, schemas=document["components"]["schemas"], type_name=type_name
    )


@bp.errorhandler(Problem)
def problem(exc: Problem) -> Response:
    return exc.response()


@bp.after_request
def _finish(response: Response) -> Response:
    response.headers.update(g.pop("api_ratelimit", {}))
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def is_api_request() -> bool:
    return request.path.startswith("/api/v1")


def problem_for(exc: HTTPException) -> Response:
    """An HTTP error under /api/v1 (unknown path, wrong method) as problem details instead of a page."""
    response = for_status(exc.code or 500, exc.description).response()
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def init_app(app: Flask) -> None:
    from saas.extensions import csrf

    api.install(bp)
    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.register_blueprint(docs_bp)

    # Errors raised before a view runs (wrong method, body too large, a malformed form) are problem
    # details under /api/v1 too; the web's own handlers for 403/404/500 ask the same question.
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if is_api_request():
            return problem_for(exc)
        return exc


__all__ = ["MEDIA_TYPE", "init_app", "is_api_request", "problem_for"]
