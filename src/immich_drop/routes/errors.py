"""`ApiError` and request helpers shared by the JSON routes; the app turns ApiError into a response."""

from __future__ import annotations

import json

from starlette.requests import Request

from .. import security


class ApiError(Exception):
    """A refusal: status, an English message, and for people a stable `code` (the catalog key
    "server.<code>") with the `params` its text needs, so pages show it in the reader's language.
    `errors` adds per-field refusals `{field: {"code", "message", "params"}}` (the console shows each
    next to its field)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 code: str | None = None, params: dict | None = None, errors: dict[str, dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
        self.code, self.params, self.errors = code, params or {}, errors


class FieldErrors:
    """Collects refusals per field while a body is validated; `raise_if_any()` raises one ApiError 400."""

    def __init__(self):
        self.errors: dict[str, dict] = {}

    def add(self, field: str, code: str, message: str, **params) -> None:
        self.errors.setdefault(field, {"code": code, "message": message, "params": params})

    def raise_if_any(self) -> None:
        if self.errors:
            text = " ".join(f"{field}: {e['message']}" for field, e in self.errors.items())
            raise ApiError(400, text, code="fields_invalid", errors=self.errors)


async def json_body(request: Request) -> dict:
    """The request's JSON object; 415 unless sent as application/json (which also keeps plain
    cross-site forms out), 400 if it is not an object."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ApiError(415, "Send JSON (Content-Type: application/json).", code="bad_request")
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ApiError(400, "The body is not valid JSON.", code="bad_request") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.", code="bad_request")
    return body


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def same_origin(request: Request, public_base_url: str = "") -> bool:
    return security.same_origin(request.url.scheme, request.headers.get("host", ""), request.headers.get("origin"),
                                public_base_url)
