"""Browser sessions for guests: an opaque random id in a signed, HttpOnly cookie.

The id only groups a browser's uploads (for the status channel and for resuming); it carries no
rights of its own. `read(cookie_header)` returns the id or None; `cookie(id, secure)` returns the
Set-Cookie value. The signature carries the time it was made and the server accepts it for
`MAX_AGE` (a month) whatever the browser keeps; pages renew a cookie older than `RENEW_AFTER`, so a
guest who keeps coming back keeps their session.
"""

from __future__ import annotations

import secrets
import time

from itsdangerous import BadSignature, TimestampSigner

COOKIE = "drop_session"
MAX_AGE = 60 * 60 * 24 * 30
RENEW_AFTER = 60 * 60 * 24


class Sessions:
    def __init__(self, secret: str):
        self._signer = TimestampSigner(secret, salt="immich-drop.session")

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(24)

    def read(self, cookie_header: str | None) -> str | None:
        found = self._read(cookie_header)
        return found[0] if found else None

    def _read(self, cookie_header: str | None) -> tuple[str, float] | None:
        """(session id, when its cookie was signed), or None for no, a forged or an expired cookie."""
        # Read as browsers write it, pair by pair: SimpleCookie gave up on the whole header at one
        # cookie it could not parse (a JSON value, a space, a name with "?"), so another app on the
        # same host name kept every guest from uploading (attack run). Every cookie of our name is
        # tried: one set for a parent domain by a sibling site must not hide the real one.
        for pair in (cookie_header or "").split(";"):
            name, sep, value = pair.partition("=")
            if not sep or name.strip() != COOKIE:
                continue
            try:
                signed, signed_at = self._signer.unsign(value.strip().strip('"'), max_age=MAX_AGE,
                                                        return_timestamp=True)
                return signed.decode(), signed_at.timestamp()
            except (BadSignature, UnicodeError):  # SignatureExpired is one
                continue
        return None

    def cookie(self, session_id: str, secure: bool) -> str:
        value = self._signer.sign(session_id).decode()
        attrs = f"{COOKIE}={value}; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax"
        return attrs + ("; Secure" if secure else "")

    def from_scope(self, scope) -> str | None:
        found = self._from_scope(scope)
        return found[0] if found else None

    def renewal(self, scope) -> str | None:
        """The session id when its cookie should be signed afresh (older than RENEW_AFTER), else None."""
        found = self._from_scope(scope)
        return found[0] if found and time.time() - found[1] > RENEW_AFTER else None

    def _from_scope(self, scope) -> tuple[str, float] | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                found = self._read(value.decode("latin-1"))
                if found:
                    return found
        return None
