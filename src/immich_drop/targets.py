"""Drop targets: who may upload, and where their files go.

Two kinds: the public page (the server's key, IMMICH_ALBUM_NAME) and invites (the key minted for the
admin who created the invite, the invite's album). Three questions, asked by the tus guard and the
delivery worker:

- `check(meta, session, size, filename)`, then `take(place, session, size)`, at upload creation:
  which target the new upload binds to (`Place`), then its place in it. For an invite this is where
  its rules hold: open (not expired, disabled or deleted), unlocked by this browser when it has a
  password, the file within the limits; `take` reserves one file of `size` bytes atomically and
  claims a use for this browser with its first file (one-time links bind to the first browser that
  uploads). The guard asks its room between the two. Refusals raise `TargetClosed(status, message, code, params)`: an English message fit for the guest
  and the catalog code ("server.<code>") the page translates.
- `open_for_upload(kind, id, invite=None)`, at every PATCH: may bytes still arrive?
- `delivery(upload)`, in the worker: whose library and which album. Raises `TargetGone` when the
  invite was deleted (its files are dropped) and `KeyUnavailable` when its owner must sign in again
  (its files wait).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Awaitable, Callable

from .config import Settings
from .crypto import Box, token_hash
from .guest_fields import GuestFieldsRefused, clean_guest_fields
from .i18n import size_text
from .media import VIDEO_EXTENSIONS
from .models import Account, Invite, InviteRefusal, InviteState, Upload, aware
from .store import Store

PUBLIC = "public"
INVITE = "invite"
PAUSED = "This link is paused until its owner signs in again. Your files are safe; try again later."


class TargetClosed(Exception):
    """A refusal for the guest: HTTP status, English message, and a stable code with its params (pages
    translate it as "server.<code>"; the owner's upload log shows it)."""

    def __init__(self, status: int, message: str, code: str = "bad_request", params: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.params = status, message, code, params or {}


class TargetGone(Exception):
    """The upload's invite was deleted: what it received is not delivered."""


class KeyUnavailable(Exception):
    """The invite owner's Immich key is missing or refused: delivery waits for a new sign-in."""


@dataclass(frozen=True)
class Delivery:
    owner: str  # groups the duplicate cache by Immich owner
    api_key: str
    album_name: str
    album_id: str | None = None
    invite_id: str | None = None
    account_id: str | None = None
    visibility: str | None = None  # "archive": in the album, kept out of the owner's timeline until reviewed


def invite_state(invite: Invite, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    if invite.deleted_at is not None:
        return InviteState.DELETED
    if invite.disabled:
        return InviteState.DISABLED
    if invite.expires_at is not None and aware(invite.expires_at) <= now:
        return InviteState.EXPIRED
    if invite.max_uses is not None and invite.uses >= invite.max_uses:
        return InviteState.USED_UP  # first: a browser without a use is refused as "used", whatever else
    if (invite.max_files is not None and invite.files >= invite.max_files) or \
            (invite.max_total_bytes is not None and invite.bytes >= invite.max_total_bytes):
        return InviteState.FULL
    return InviteState.ACTIVE


def _guest_name(meta: dict[str, str], mode: str) -> str:
    """The guest's name in an upload's metadata as an upload keeps it ("" where `mode` hides it or
    it is too long to keep)."""
    try:
        return clean_guest_fields(meta.get("guestName"), None, "optional" if mode == "required" else mode)[0]
    except GuestFieldsRefused:
        return ""


INVALID = (404, "This upload link is not valid.", "link_invalid")
# (a link for three browsers said "already been used" as a one-time link does: owner walk)
USED = (410, "This link has already been used by as many browsers as it allows.", "link_used")
NEEDS_PASSWORD = (401, "This link needs its password first.", "needs_password")
CLOSED = {  # (status, English message, catalog code)
    InviteState.DELETED: INVALID,
    InviteState.DISABLED: (410, "This upload link has been turned off by its owner.", "link_off"),
    InviteState.EXPIRED: (410, "This upload link has expired.", "link_expired"),
}
REFUSALS_KEPT = 200  # per invite: the owner's log of refused attempts stays bounded whatever guests send


def used(max_uses: int | None) -> TargetClosed:
    """USED, with the link's number of browsers: a one-time link's guest reads "This link has already
    been used." (the sentence for many browsers puzzled one: guest walk; pages pick it by `max`)."""
    return TargetClosed(*USED, {"max": max_uses})


@dataclass(frozen=True)
class Place:
    """Where a new upload goes (`Targets.check`): its kind, its invite's id, what becomes of the
    guest's name and message there (`Invite.guest_fields`; "hidden" on the public page, which does
    not ask), and whether its browser has yet to claim a use of the link."""

    kind: str
    target_id: str | None
    guest_fields: str
    claims: bool


class Targets:
    def __init__(self, settings: Settings, store: Store, box: Box):
        self.settings, self.store, self.box = settings, store, box
        # Told when an invite's counters or log change (the owner's live console and notifications),
        # with the invite as it now is when the caller has just read it.
        self.on_invite_change: Callable[..., Awaitable[None]] = _nothing

    async def invite_for_token(self, token: str) -> Invite | None:
        """The live or closed invite a URL token names; unknown and deleted ones are both None."""
        if not _plausible(token):
            return None
        invite = await self.store.invite_by_token_hash(token_hash(token))
        return None if invite is None or invite.deleted_at is not None else invite

    async def check(self, meta: dict[str, str], session: str, size: int, filename: str) -> Place:
        """Where a new upload would go, if its target takes it: the link is open to this browser and
        takes this file. Reads only; `take` reserves. Raises TargetClosed with the reason it cannot."""
        token = meta.get("invite")
        if not token:
            self._public_open()
            return Place(PUBLIC, None, "hidden", False)
        found = await self.store.invite_for_guest(token_hash(token), session) if _plausible(token) else None
        if found is None or found[0].deleted_at is not None:
            raise TargetClosed(*INVALID)
        invite, standing, account = found
        state = invite_state(invite)
        if state in CLOSED:
            raise TargetClosed(*CLOSED[state])
        if state == InviteState.USED_UP and not (standing and standing.claimed):
            raise used(invite.max_uses)
        if account is None or not account.key_valid:
            raise TargetClosed(503, PAUSED, "link_paused")
        if invite.password_hash and not (standing and standing.unlocked):
            raise TargetClosed(*NEEDS_PASSWORD)
        check_file(invite, filename, size)
        if invite.guest_fields == "required" and not _guest_name(meta, "required"):
            raise TargetClosed(400, "Please enter your name.", "name_required")
        return Place(INVITE, invite.id, invite.guest_fields, not (standing and standing.claimed))

    async def take(self, place: Place, session: str, size: int) -> None:
        """Reserve the upload's place in its link's limits, and claim its browser's use of the link
        with its first file. Raises TargetClosed when a limit is reached meanwhile.

        The place first, then the use: claimed first, a file the full link refused took a use all
        the same, and two browsers refused so closed a two-use link that its owner then reopened by
        raising its files (attack run). The caller asks the room before this, so no refusal for
        room comes after a claim either: a claim is never taken back (a use given back again was
        told to the owner as "used up" first, and could let a second browser in beside one of the
        same browser's files on its way: cold review)."""
        if place.kind != INVITE or place.target_id is None:
            return
        reserved = await self.store.reserve_invite(place.target_id, size)
        if reserved is None:
            raise TargetClosed(403, "This link's limit is reached: no more files can be sent with it.", "limit_reached")
        if place.claims:
            try:
                claimed = await self.store.claim_invite(place.target_id, session)
            except BaseException:  # no row will follow: the place goes back (a claim made stays: a use spent)
                await self.store.release_invite(place.target_id, size)
                raise
            if not claimed:
                await self.store.release_invite(place.target_id, size)
                await self.on_invite_change(place.target_id)
                invite = await self.store.get_invite(place.target_id)
                raise used(invite.max_uses if invite else None)
        # told from this reservation's own row (read afresh after a claim, which counts a use): one
        # that raced another's may arrive after it, and the next event puts the owner's console right
        await self.on_invite_change(place.target_id, None if place.claims else reserved, claimed=place.claims, taken=True)

    async def note_refusal(self, meta: dict[str, str], filename: str, size: int, code: str, message: str,
                           session: str | None = None) -> None:
        """Keep a refused upload in its invite's log (only for a real, live invite; bounded per invite).
        On a link with a password, what a browser that has not given it wrote (the file's name, the
        guest's name) is left out: the link alone must not let anyone write text into the owner's
        console (attack run); the refusal, its size and its reason are kept."""
        invite = await self.invite_for_token(meta.get("invite", ""))
        if invite is None:
            return
        name = _guest_name(meta, invite.guest_fields)  # as an upload would keep it: cleaned, none where hidden
        if invite.password_hash:
            standing = await self.store.guest_standing(invite.id, session) if session else None
            if not (standing and standing.unlocked):
                filename, name = "", ""
        await self._log_refusal(invite.id, filename, size, code, message, name)

    async def note_refused_upload(self, upload: Upload, code: str, message: str) -> None:
        """`note_refusal` for an upload already made (refused at its first bytes), from its row."""
        if upload.target_kind == INVITE and upload.target_id:
            await self._log_refusal(upload.target_id, upload.filename, upload.size, code, message, upload.guest_name)

    async def _log_refusal(self, invite_id: str, filename: str, size: int, code: str, message: str,
                           guest_name: str) -> None:
        await self.store.add_refusal(InviteRefusal(
            invite_id=invite_id, filename=filename[:1024], size=max(0, size), code=code, message=message[:512],
            guest_name=guest_name[:100]), keep=REFUSALS_KEPT)
        await self.on_invite_change(invite_id)

    async def release(self, upload: Upload) -> None:
        """Give back what `take` reserved, for an upload that was cancelled or expired."""
        if upload.target_kind == INVITE and upload.target_id:
            await self.store.release_invite(upload.target_id, upload.size)
            await self.on_invite_change(upload.target_id, freed=upload.size)

    async def open_for_upload(self, kind: str, target_id: str | None, invite: Invite | None = None) -> None:
        """`invite`, when the caller has just read it (`Store.upload_and_invite`), saves reading it again."""
        if kind == PUBLIC:
            return self._public_open()
        if invite is None or invite.id != target_id:
            invite = await self.store.get_invite(target_id or "")
        if invite is None:
            raise TargetClosed(*INVALID)
        state = invite_state(invite)
        if state in CLOSED:
            raise TargetClosed(*CLOSED[state])

    async def unlocked(self, invite: Invite, session: str) -> None:
        """Raises TargetClosed unless this browser gave the link's current password."""
        standing = await self.store.guest_standing(invite.id, session)
        if not (standing and standing.unlocked):
            raise TargetClosed(*NEEDS_PASSWORD)

    def _public_open(self) -> None:
        if not self.settings.public_upload_page_enabled:
            raise TargetClosed(403, "Uploads are not open here.", "uploads_closed")

    async def delivery(self, upload: Upload, rows: tuple[Invite | None, Account | None] | None = None) -> Delivery:
        """Where and as whom `upload` goes; `rows`, (invite, account) as `Store.invite_and_owner`
        gives them, when the caller has just read them (`Store.claim_delivery`)."""
        if upload.target_kind != INVITE:
            key = self.settings.immich_api_key
            owner = "key:" + hashlib.sha256(key.encode()).hexdigest()[:24]
            return Delivery(owner=owner, api_key=key, album_name=self.settings.immich_album_name)
        invite, account = rows or await self.store.invite_and_owner(upload.target_id or "")
        if invite is None or invite.deleted_at is not None:
            raise TargetGone()
        key = self.box.open(account.api_key_enc) if account and account.key_valid else None
        if not key:
            raise KeyUnavailable()
        return Delivery(owner=f"user:{invite.owner_id}", api_key=key, album_name=invite.album_name,
                        album_id=invite.album_id, invite_id=invite.id, account_id=invite.owner_id,
                        visibility="archive" if invite.archive else None)


def check_file(invite: Invite, filename: str, size: int) -> None:
    """Raises TargetClosed when the link does not take this file: its kind (photos or videos only, by
    its extension) or its size."""
    is_video = PurePosixPath(filename).suffix.lower() in VIDEO_EXTENSIONS
    if invite.media_kind == "photos" and is_video:
        raise TargetClosed(415, "This link takes photos only.", "photos_only")
    if invite.media_kind == "videos" and not is_video:
        raise TargetClosed(415, "This link takes videos only.", "videos_only")
    if invite.max_file_size is not None and size > invite.max_file_size:
        raise TargetClosed(413, f"Files may be at most {size_text(invite.max_file_size)} here.", "file_too_large",
                           {"size": invite.max_file_size})


def _plausible(token: str) -> bool:
    """A URL token worth looking up (an overlong one is never hashed)."""
    return 0 < len(token) <= 128


async def _nothing(invite_id: str, invite: Invite | None = None) -> None:
    return None



