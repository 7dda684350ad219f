"""Browser sessions for guests: an opaque random id in a signed, HttpOnly cookie.

The id only groups a browser's uploads (for the status channel and for resuming); it carries no
rights of its own. `read(cookie_header)` returns the id or None; `cookie(id, secure)` returns the
Set-Cookie value.
"""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie

from itsdangerous import BadSignature, Signer

COOKIE = "drop_session"
MAX_AGE = 60 * 60 * 24 * 30


class Sessions:
    def __init__(self, secret: str):
        self._signer = Signer(secret, salt="immich-drop.session")

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(24)

    def read(self, cookie_header: str | None) -> str | None:
        if not cookie_header:
            return None
        try:
            morsel = SimpleCookie(cookie_header).get(COOKIE)
        except Exception:  # a malformed Cookie header is just no session
            return None
        if morsel is None:
            return None
        try:
            return self._signer.unsign(morsel.value).decode()
        except BadSignature:
            return None

    def cookie(self, session_id: str, secure: bool) -> str:
        value = self._signer.sign(session_id).decode()
        attrs = f"{COOKIE}={value}; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax"
        return attrs + ("; Secure" if secure else "")

    def from_scope(self, scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                found = self.read(value.decode("latin-1"))
                if found:
                    return found
        return None
