""""Already there": a file this browser sent before is recorded again without its bytes.

`AlreadyThere(services).record(session, body)` takes the page's question, `{invite, sha1, size,
filename, filetype, guestName?, guestMessage?}`, and returns the id of a new upload row in state
`duplicate`, or of the earlier row where the file went through this same link (a file chosen again
was listed twice in the owner's log), or None (then the page simply sends the file).

Only hashes this server computed itself from bytes it received count, and only for the browser that
sent them: the SHA-1 must belong to an upload that this same session sent in full, to the same owner,
of the same size, and that was delivered (done or duplicate, with an asset id). A guest who knows a
hash but did not send those bytes from this browser gets None: they learn nothing about anyone's
library and can add nothing to an album. Immich then decides (its bulk check must still report the
asset, not trashed); the local rows only say that asking is allowed.

The new row takes no part of the link's limits on counts (a duplicate gives back what it would
reserve), but the link must take the file (its kind, its largest size), must not be full, and the
browser uses it (a one-time link's use is taken here as a creation takes it); it is added to the
link's album like any delivered duplicate, and is announced on the status channel.
"""

from __future__ import annotations

import logging
import re
import uuid

from .events import upload_event
from .guest_fields import GuestFieldsRefused, clean_guest_fields
from .immich import ImmichError
from .models import InviteState, Upload, UploadState, utcnow
from .targets import CLOSED, INVITE, PUBLIC, KeyUnavailable, TargetClosed, TargetGone, check_file, invite_state
from .tus.guard import clean_filename, clean_filetype

log = logging.getLogger(__name__)
SHA1 = re.compile(r"^[0-9a-f]{40}$")


class AlreadyThere:
    def __init__(self, services):
        self.settings, self.store, self.immich = services.settings, services.store, services.immich
        self.targets, self.pipeline, self.bus = services.targets, services.pipeline, services.bus

    async def record(self, session: str, body: dict) -> str | None:
        sha1 = str(body.get("sha1") or "").lower()
        size = body.get("size")
        filename = clean_filename(str(body.get("filename") or ""))
        if not SHA1.match(sha1) or isinstance(size, bool) or not isinstance(size, int) or size <= 0 or not filename:
            return None
        target = await self._target(str(body.get("invite") or ""), session)
        if target is None:
            return None
        kind, invite, standing = target
        owner = invite.owner_id if invite else None
        prior = [u for u in await self.store.delivered_by_session(session, sha1)
                 if u.size == size and await self._owner(u) == (kind, owner)]
        if not prior:
            return None
        earlier = next((u for u in prior if u.target_kind == kind and u.target_id == (invite.id if invite else None)), None)
        # a full link takes no file more, as its creations say (the page sends it, and hears why); a
        # file it took already is still that file (its guest, choosing it again, read "not taken")
        if invite is not None and earlier is None and invite_state(invite) == InviteState.FULL:
            return None
        # the link's own rules, for the name asked with and the name its bytes came with: a
        # videos-only link took photos sent earlier through another link (attack run)
        if invite is not None:
            try:
                check_file(invite, filename, size)
                check_file(invite, prior[0].filename, size)
            except TargetClosed:
                return None  # the page sends it, and the refusal comes with its reason
        try:
            name, message = clean_guest_fields(body.get("guestName"), body.get("guestMessage"),
                                               getattr(invite, "guest_fields", "optional") if invite else "hidden")
        except GuestFieldsRefused:  # was a 500 with two tracebacks (attack run)
            return None  # the page sends the file, and its creation says what is missing or too long
        # a file recorded through a link uses it, as a creation does: a one-time link took a browser's
        # files into its album without counting its use, and another browser then claimed it (attack run)
        if invite is not None and not (standing and standing.claimed) and not await self._claim(invite, session):
            return None
        upload = Upload(id=uuid.uuid4().hex, session_id=session, target_kind=kind, target_id=invite.id if invite else None,
                        filename=filename, filetype=clean_filetype(str(body.get("filetype") or "")), size=size,
                        state=UploadState.DUPLICATE, checksum=sha1, received_at=utcnow(),
                        **({"guest_name": name, "guest_message": message} if hasattr(Upload, "guest_name") else {}))
        try:
            delivery = await self.targets.delivery(upload)
            check = (await self.immich.bulk_upload_check(delivery.api_key, [(upload.id, sha1)])).get(upload.id, {})
            if check.get("action") != "reject" or check.get("reason") != "duplicate" or not check.get("assetId") \
                    or check.get("isTrashed"):
                return None  # gone from Immich, or in its trash: the bytes must travel again
            upload.asset_id = check["assetId"]
            if delivery.album_name or delivery.album_id:
                await self.pipeline.add_to_album(delivery, upload.asset_id, upload)
        except (ImmichError, KeyUnavailable, TargetGone) as exc:
            log.info("already-there check skipped: %s", exc)
            return None
        if earlier is not None:  # sent through this same link: its row stands, the owner's log lists the file once
            return earlier.id
        await self.store.add_upload(upload)
        self.bus.publish(session, upload_event(upload))
        return upload.id

    async def _target(self, token: str, session: str):
        """(kind, invite or None, this browser's standing there or None) when this session may upload
        there now; None otherwise."""
        if not token:
            return (PUBLIC, None, None) if self.settings.public_upload_page_enabled else None
        invite = await self.targets.invite_for_token(token)
        if invite is None:
            return None
        state = invite_state(invite)
        standing = await self.store.guest_standing(invite.id, session)
        if state in CLOSED or (state == InviteState.USED_UP and not (standing and standing.claimed)):
            return None
        if invite.password_hash and not (standing and standing.unlocked):
            return None
        return INVITE, invite, standing

    async def _claim(self, invite, session: str) -> bool:
        """This browser's use of the link, taken now (False: none is left for it)."""
        if not await self.store.claim_invite(invite.id, session):
            return False
        await self.targets.on_invite_change(invite.id, claimed=True)  # the owner's console, the link's other pages
        return True

    async def _owner(self, upload: Upload):
        """Whose library an earlier upload went to, as (kind, owner id)."""
        if upload.target_kind != INVITE:
            return PUBLIC, None
        invite = await self.store.get_invite(upload.target_id or "")
        return INVITE, invite.owner_id if invite else ""
