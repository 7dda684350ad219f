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
# Over HTTPS the cookie is `__Host-` prefixed: browsers let only this host set it (Secure, Path=/,
# no Domain), so a sibling site under the same parent domain can neither set a session of its own
# for the guest nor hide theirs (cold review: a validly signed cookie for Path=/api/ from a sibling
# came first, and unlocked a password link for the sibling's own session). Plain HTTP has no such
# guard; there the last valid cookie of the name counts, as SimpleCookie read it.
SECURE_COOKIE = "__Host-drop_session"
MAX_AGE = 60 * 60 * 24 * 30
RENEW_AFTER = 60 * 60 * 24
CHECKED = 4  # session cookies of one header whose signatures are checked, the last ones


class Sessions:
    def __init__(self, secret: str):
        self._signer = TimestampSigner(secret, salt="immich-drop.session")

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(24)

    def read(self, cookie_header: str | None, secure: bool = False) -> str | None:
        found = self._read(cookie_header, secure)
        return found[0] if found else None

    def _read(self, cookie_header: str | None, secure: bool = False) -> tuple[str, float] | None:
        """(session id, when its cookie was signed), or None for no, a forged or an expired cookie."""
        # Read as browsers write it, pair by pair: SimpleCookie gave up on the whole header at one
        # cookie it could not parse (a JSON value, a space, a name with "?"), so another app on the
        # same host name kept every guest from uploading (attack run).
        # The last valid cookie of the name counts, and only the last CHECKED are tried: a 32 KiB
        # header of 378 forged ones had each signature checked, 6 times a request's cost (probe).
        name = SECURE_COOKIE if secure else COOKIE
        values = [value for key, sep, value in (pair.partition("=") for pair in (cookie_header or "").split(";"))
                  if sep and key.strip() == name]
        for value in reversed(values[-CHECKED:]):
            try:
                signed, signed_at = self._signer.unsign(value.strip().strip('"'), max_age=MAX_AGE,
                                                        return_timestamp=True)
            except (BadSignature, UnicodeError):  # SignatureExpired is one
                continue
            return signed.decode(), signed_at.timestamp()
        return None

    def cookie(self, session_id: str, secure: bool) -> str:
        value = self._signer.sign(session_id).decode()
        attrs = f"{SECURE_COOKIE if secure else COOKIE}={value}; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax"
        return attrs + ("; Secure" if secure else "")

    def from_scope(self, scope) -> str | None:
        found = self._from_scope(scope)
        return found[0] if found else None

    def renewal(self, scope) -> str | None:
        """The session id when its cookie should be signed afresh (older than RENEW_AFTER), else None."""
        found = self._from_scope(scope)
        return found[0] if found and time.time() - found[1] > RENEW_AFTER else None

    def _from_scope(self, scope) -> tuple[str, float] | None:
        secure = scope.get("scheme") in ("https", "wss")  # as the proxy module set it from a trusted proxy
        # several Cookie headers (HTTP/2 sends them in crumbs) are one list, read once
        return self._read("; ".join(value.decode("latin-1") for name, value in scope.get("headers", [])
                                    if name == b"cookie"), secure)
