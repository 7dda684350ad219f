"""Admin sign-in: Immich credentials in, a server-side session and a least-privilege key out.

`Accounts.sign_in_password(email, password, lang)` and `sign_in_key(api_key, lang)` check the
credentials with Immich, mint an API key holding only `INVITE_PERMISSIONS` for that user (what invites
need to upload into their library), store it sealed with the admin's language (for notifications), and
open a session. The browser gets only an opaque random id in a signed cookie; the database keeps its
SHA-256, the Immich session token (sealed, to end it at logout) and the CSRF token. Immich tokens and
keys never leave the server.

One key per admin: signing in again reuses the stored key while Immich still accepts it. After a key
stopped working (revoked in Immich), signing in mints a fresh one, removes the old one from Immich,
and wakes the uploads that waited.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from itsdangerous import BadSignature, Signer

from .config import Settings
from .crypto import Box
from .immich import ImmichClient, ImmichRejected, ImmichUnavailable
from .models import Account, AdminSession
from .pipeline import Pipeline
from .store import Store

log = logging.getLogger(__name__)
COOKIE = "drop_admin"
# The guest's name reaches Immich as an XMP sidecar in the upload itself: no asset.update needed.
INVITE_PERMISSIONS = ["asset.upload", "album.read", "album.create", "albumAsset.create"]


UNREACHABLE = "Immich cannot be reached right now. Try again in a moment."


class SignInError(Exception):
    """A sign-in refused: status, English message, and the catalog code ("server.<code>") with its
    params, which the console shows in the owner's language."""

    def __init__(self, status: int, message: str, code: str, params: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.params = status, message, code, params or {}


@dataclass
class Signed:
    cookie_value: str
    session: AdminSession
    account: Account


KEY_NAME = "Immich Drop invites"  # how the keys it makes for owners' uploads begin, in Immich


class Accounts:
    def __init__(self, settings: Settings, store: Store, immich: ImmichClient, box: Box, pipeline: Pipeline):
        self.settings, self.store, self.immich, self.box, self.pipeline = settings, store, immich, box, pipeline
        self._signer = Signer(settings.session_secret, salt="immich-drop.admin")

    async def sign_in_password(self, email: str, password: str, lang: str | None = None, where: str = "") -> Signed:
        try:
            login = await self.immich.login(email, password)
        except ImmichRejected as exc:
            if exc.status in (400, 401):
                raise SignInError(401, "Wrong email or password.", code="wrong_sign_in") from None
            raise SignInError(502, f"Immich refused the sign-in: {exc.message}", code="sign_in_refused",
                              params={"reason": exc.message}) from None
        except ImmichUnavailable:
            raise SignInError(502, UNREACHABLE, code="immich_unreachable") from None
        token = login["accessToken"]
        user = {"id": login["userId"], "email": login.get("userEmail", email), "name": login.get("name", "")}
        return await self._open(user, lang, where, token=token)

    async def sign_in_key(self, api_key: str, lang: str | None = None, where: str = "") -> Signed:
        try:
            me = await self.immich.me(api_key=api_key)
        except ImmichRejected as exc:
            if exc.status == 403:
                raise SignInError(401, "This API key needs the user.read permission to sign in.",
                                  code="key_needs_user_read") from None
            raise SignInError(401, "Immich did not accept this API key.", code="key_refused") from None
        except ImmichUnavailable:
            raise SignInError(502, UNREACHABLE, code="immich_unreachable") from None
        return await self._open({"id": me["id"], "email": me.get("email", ""), "name": me.get("name", "")}, lang, where,
                                api_key=api_key)

    async def _open(self, user: dict, lang: str | None, where: str, token: str | None = None,
                    api_key: str | None = None) -> Signed:
        try:
            secret, key_id = await self._upload_key(user["id"], token, api_key, where)
        except ImmichRejected as exc:
            needed = ", ".join(["apiKey.create", *INVITE_PERMISSIONS])
            raise SignInError(403, f"Immich would not create an upload key for this account ({exc.message}). "
                                   f"A key used to sign in needs: user.read, {needed}.", code="no_upload_key",
                              params={"reason": exc.message, "permissions": f"user.read, {needed}"}) from None
        except ImmichUnavailable:
            raise SignInError(502, UNREACHABLE, code="immich_unreachable") from None
        account = await self.store.save_account(Account(  # what the sign-in does not decide stays as it was
            user_id=user["id"], email=user["email"], name=user["name"], api_key_enc=self.box.seal(secret),
            api_key_id=key_id, key_valid=True, lang=lang, updated_at=datetime.now(timezone.utc)))
        raw = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        session = AdminSession(id_hash=_digest(raw), user_id=account.user_id, csrf_token=secrets.token_urlsafe(32),
                               immich_token_enc=self.box.seal(token) if token else "",
                               created_at=now, expires_at=now + timedelta(hours=self.settings.admin_session_hours))
        await self.store.add(session)
        await self.store.delete_expired_admin_sessions(now)
        await self.pipeline.resume_account(account.user_id)
        return Signed(self._signer.sign(raw).decode(), session, account)

    async def _upload_key(self, user_id: str, token: str | None, api_key: str | None,
                          where: str = "") -> tuple[str, str | None]:
        """The account's minted key: the stored one while Immich accepts it, else a new one (and the
        old one removed from Immich, so keys do not pile up in the user's account). Its name says
        which server (`where`: the address the owner signed in at) made it, and when: an owner with
        87 keys all named "Immich Drop invites" could not tell a reinstalled server's dead ones
        from the live one (owner walk)."""
        account = await self.store.get_account(user_id)
        old = self.box.open(account.api_key_enc) if account and account.api_key_enc else None
        if old and await self.immich.key_works(old):
            return old, account.api_key_id
        name = " · ".join([KEY_NAME, *([where[:100]] if where else []), datetime.now(timezone.utc).date().isoformat()])
        secret, key_id = await self.immich.create_api_key(name, INVITE_PERMISSIONS, token=token, api_key=api_key)
        if account and account.api_key_id:
            try:
                await self.immich.delete_api_key(account.api_key_id, token=token, api_key=api_key)
            except (ImmichRejected, ImmichUnavailable) as exc:  # e.g. a sign-in key without apiKey.delete
                log.warning("could not remove the replaced upload key of %s from Immich: %s", user_id, exc.message)
        return secret, key_id

    async def current(self, cookie_value: str | None) -> tuple[AdminSession, Account] | None:
        raw = self._unsign(cookie_value)
        if raw is None:
            return None
        return await self.store.get_admin_session(_digest(raw), datetime.now(timezone.utc))

    async def sign_out(self, cookie_value: str | None) -> None:
        raw = self._unsign(cookie_value)
        if raw is None:
            return
        row = await self.store.delete_admin_session(_digest(raw))
        token = self.box.open(row.immich_token_enc) if row else None
        if token:
            try:
                await self.immich.logout(token)
            except (ImmichRejected, ImmichUnavailable):
                pass  # our session is gone either way; Immich's expires on its own

    def cookie(self, value: str, secure: bool, clear: bool = False) -> str:
        age = 0 if clear else int(self.settings.admin_session_hours * 3600)
        return (f"{COOKIE}={'' if clear else value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict"
                + ("; Secure" if secure else ""))

    def _unsign(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return self._signer.unsign(value).decode()
        except BadSignature:
            return None


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()

