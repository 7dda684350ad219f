"""`ApiError` and request helpers shared by the JSON routes; the app turns ApiError into a response."""

from __future__ import annotations

import json

from starlette.requests import Request

from .. import security


class ApiError(Exception):
    """A refusal: status, the English message, and a stable `code` (with `params`) that pages
    translate as "server.<code>"."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, *, code: str = "",
                 params: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
        self.code, self.params = code, params or {}

    def body(self) -> dict:
        return refusal(self.message, self.code, self.params)


def refusal(message: str, code: str = "", params: dict | None = None) -> dict:
    """The JSON of every refusal: {"message"} plus {"code", "params"} when the message has a code."""
    body: dict = {"message": message}
    if code:
        body["code"] = code
        body["params"] = params or {}
    return body


async def json_body(request: Request) -> dict:
    """The request's JSON object; 415 unless sent as application/json (which also keeps plain
    cross-site forms out), 400 if it is not an object."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ApiError(415, "Send JSON (Content-Type: application/json).")
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ApiError(400, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return body


def too_many(wait: int) -> ApiError:
    return ApiError(429, f"Too many attempts. Try again in {wait} seconds.", {"Retry-After": str(wait)},
                    code="too_many_attempts", params={"seconds": wait})


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def same_origin(request: Request, public_base_url: str = "") -> bool:
    return security.same_origin(request.url.scheme, request.headers.get("host", ""), request.headers.get("origin"),
                                public_base_url)
