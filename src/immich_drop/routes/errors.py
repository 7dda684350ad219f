"""`ApiError` and request helpers shared by the JSON routes; the app turns ApiError into a response."""

from __future__ import annotations

import json

from starlette.requests import Request

from .. import i18n, security
from ..proxy import address_key


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


MAX_DEPTH = 8  # the deepest request (an invite with its album) nests 2 levels
MAX_INT = 2**53  # what JavaScript and every column here hold exactly


async def json_body(request: Request) -> dict:
    """The request's JSON object; 415 unless sent as application/json (which also keeps plain
    cross-site forms out), 400 if it is not an object or holds what no handler should see: nesting
    deeper than MAX_DEPTH, NaN or Infinity, integers beyond ±MAX_INT, lone surrogates (text that
    is not Unicode and that no database or HTTP client could store or send)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ApiError(415, "Send JSON (Content-Type: application/json).", code="bad_request")
    try:
        body = json.loads(await request.body() or b"{}", parse_constant=_no_constant)
        _check(body, 0)
    except (ValueError, RecursionError) as err:
        message = str(err) if isinstance(err, _Refused) else "The body is not valid JSON."
        raise ApiError(400, message, code="bad_request") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.", code="bad_request")
    return body


class _Refused(ValueError):
    pass


def _no_constant(name: str):
    raise _Refused(f"The body holds {name}, which is not a number here.")


def _check(value, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Refused("The body is nested too deeply.")
    if isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused("The body holds text that is not valid Unicode.") from None
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise _Refused("The body holds a number too large to be meant.")


def text_field(body: dict, name: str, most: int) -> str:
    """`body[name]` as a string of at most `most` characters ("" when absent or null); 400 otherwise."""
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > most:
        raise ApiError(400, f"{name}: text of at most {most} characters.", code="bad_request",
                       params={"field": name, "most": most})
    return value


def too_many(wait: int) -> ApiError:
    """429 after too many attempts; `wait` seconds until the next is taken. The pages say the wait as
    people do ("15 minutes", from `params.wait`); `Retry-After` keeps the seconds."""
    return ApiError(429, f"Too many attempts. Try again in {i18n.wait_text(wait)}.", {"Retry-After": str(wait)},
                    code="too_many_attempts", params={"wait": wait})


def client_address(request: Request) -> str:
    """Who a per-address limit counts: the client's address, an IPv6 one by its /64 (one host picks
    freely from a whole /64, so counting single addresses let it guess without end)."""
    return address_key(request.client.host) if request.client else "unknown"


def same_origin(request: Request, public_base_url: str = "") -> bool:
    return security.same_origin(request.url.scheme, request.headers.get("host", ""), request.headers.get("origin"),
                                public_base_url)
