"""Errors as RFC 9457 problem details: `application/problem+json` with a field-level `errors` list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import Response, json
from pydantic import ValidationError

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "/api/docs#problem-"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Server error",
}

# Pydantic's words for the mistakes people make most, said for this API.
MESSAGES = {
    "timezone_aware": "Give the time with its offset, e.g. 2026-05-01T09:00:00+02:00; times without one are refused.",
    "datetime_from_date_parsing": "Give a time in RFC 3339, e.g. 2026-05-01T09:00:00+02:00.",
    "datetime_parsing": "Give a time in RFC 3339, e.g. 2026-05-01T09:00:00+02:00.",
    "datetime_type": "Give a time in RFC 3339, e.g. 2026-05-01T09:00:00+02:00.",
    "extra_forbidden": "Unknown field.",
    "missing": "Required.",
}


class Problem(Exception):
    """An answer that is not a success; raise it anywhere in an API view."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = [dict(e) for e in errors]
        self.headers = dict(headers or {})
        self.kind = kind or TITLES.get(status, "error").lower().replace(" ", "-")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.kind,
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body

    def response(self) -> Response:
        response = Response(json.dumps(self.body()), status=self.status, mimetype=MEDIA_TYPE)
        response.headers.update(self.headers)
        return response


def invalid(field: str, message: str) -> Problem:
    """One field is wrong: 422 naming it."""
    return Problem(422, message, errors=[{"field": field, "message": message}])


def from_validation(exc: ValidationError, prefix: str = "") -> Problem:
    errors = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
        field = f"{prefix}{location}" if location else prefix.rstrip(".") or "body"
        errors.append({"field": field, "message": MESSAGES.get(error["type"], error["msg"])})
    noun = "field is" if len(errors) == 1 else "fields are"
    return Problem(422, f"{len(errors)} {noun} not valid: see errors.", errors=errors)


def for_status(status: int, description: str | None = None) -> Problem:
    details = {
        404: "There is nothing at this address, or it is not yours to see.",
        405: "This address does not take that method; see /api/v1/openapi.json.",
        500: "Something went wrong on our side. Nothing was changed; try again in a moment.",
    }
    return Problem(status, details.get(status) or description or TITLES.get(status, "Error"))
