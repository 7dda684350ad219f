"""`TusGuard`: the ASGI gate in front of tuspyserver. Every rule here runs before a byte is written.

tuspyserver validates `Tus-Resumable`, `Content-Type`, auth and lengths only after it has appended
the body, accepts any `Upload-Length`, and offers extensions we do not serve. The guard answers
those requests itself, with a clear status and `{"message": ...}`, and passes on only requests that
are already known to be good:

- all: `Tus-Resumable: 1.0.0` (412), no `X-HTTP-Method-Override` (400), no GET (405), same-origin
  `Origin` when a browser sends one (403), a guest session cookie;
- creation (POST): `Upload-Length` present, > 0 and ≤ MAX_UPLOAD_SIZE (400/413); metadata `filename`
  and `filetype`; an extension Immich accepts (415); no body, no `Upload-Concat`, no
  `Upload-Defer-Length` (400); an open drop target (403/404); room for it (public page quotas 429,
  staging disk 507: tus/room.py). The upload row is written here, bound to the session, its address
  and the target, and its id handed to tuspyserver. A later creation of the same file from the
  guest page (`Immich-Drop-Retry`, the same `uploadKey` in its metadata) gets the upload this
  session made with that key for the same link, size and name, if it still waits for its bytes:
  its `Location` (201). An answer lost on the network costs no second place in the link's limits;
- HEAD, PATCH, DELETE: a known id created by this session (404 otherwise, so ids cannot be probed);
- PATCH: `Content-Type: application/offset+octet-stream` (415), a `Content-Length` (411) no larger
  than 2 × CHUNK_SIZE (413), `Upload-Offset` equal to the bytes on disk (409), offset + length ≤
  `Upload-Length` (400), the drop target still open (403/410), and the upload's lock. The lock is
  held until tuspyserver has answered; a body that stops arriving for UPLOAD_STALL_SECONDS ends the
  PATCH (bytes kept, lock released: tus/stall.py);
- HEAD of an upload whose last byte was recorded: complete (offset = length), answered here, since
  its staged copy is gone once delivered; HEAD or DELETE of a failed one: 404, a PATCH 409 with no
  offset (or why its link closed), so a client asks HEAD and sends the file anew;
- HEAD, PATCH, DELETE of an upload that an older request of the same session still holds ask that one
  to stop and go on once it has (tusd v2's lock release, tus/locks.py); 423 if it does not let go.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import unicodedata
import uuid
from email.utils import formatdate
from pathlib import PurePosixPath
from typing import Awaitable, Callable

from starlette.requests import Request
from tuspyserver.request import get_request_headers

from ..crypto import token_hash
from ..events import EventBus, upload_event
from ..guest_fields import JOINERS, GuestFieldsRefused, clean_guest_fields
from ..i18n import size_text
from ..media import SIGNATURE_BYTES, matches_name
from ..models import Invite, Upload, UploadState
from ..proxy import address_key
from ..ratelimit import RateLimiter
from ..security import same_origin
from ..sessions import Sessions
from ..store import Store
from ..targets import TargetClosed, Targets, check_file
from .locks import UploadLocks
from .room import NO_SPACE, Room
from .sniff import first_bytes
from .stall import BodyWatch
from .storage import UID, StagingStorage, UploadGone

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,expiration,termination"
MAX_METADATA = 4 * 1024  # Upload-Metadata: a file name of 255 characters, its type, a link token and a few numbers
# The guest page's key for one file (Upload-Metadata "uploadKey"), and the header its page adds to a
# creation it sends again after the earlier one's answer was lost: only then is the key looked up.
UPLOAD_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
RETRY_HEADER = "immich-drop-retry"
RELEASE_WAIT = 10.0  # seconds a request waits for an older one on the same upload to let go (then 423)
log = logging.getLogger(__name__)


# Refusals a guest of a live invite can meet, kept in the invite's log for its owner (not protocol slips).
LOGGED = frozenset({"too_large", "file_too_large", "photos_only", "videos_only", "type_not_accepted", "no_extension",
                    "empty", "limit_reached", "link_used", "needs_password", "link_off", "link_expired", "link_paused",
                    "not_media"})
REFUSALS_NOTED = 30  # of them, an hour per address and link


class Refuse(Exception):
    """An answer from the guard: status, English message, and the catalog code ("server.<code>") with
    its params, which the page shows in the guest's language (protocol slips are all "bad_request")."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 code: str = "bad_request", params: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
        self.code, self.params = code, params or {}  # an invite's owner sees the guest's refusals in its log

    @classmethod
    def of(cls, closed: TargetClosed) -> "Refuse":
        """The answer for a link's (or the public page's) refusal."""
        return cls(closed.status, closed.message, code=closed.code, params=closed.params)


async def end_receiving(store: Store, targets: Targets, bus: EventBus, upload: Upload, why: str | None = None) -> bool:
    """Forget an upload still receiving (cancelled, refused at its first bytes, or removed by its
    link's owner: `why` "owner"): its row, then its place in its link's limits, and its page hears
    it is gone. False, and nothing changed, if it is not receiving any more (its last byte won a
    race: it is a delivery now). The caller holds the upload's lock; its staged files are the
    caller's to delete (tuspyserver deletes them on a DELETE)."""
    if not await store.delete_upload(upload.id, only_from=UploadState.RECEIVING):
        return False
    await targets.release(upload)
    bus.publish(upload.session_id, {"type": "removed", "id": upload.id, **({"why": why} if why else {})})
    return True


class TusGuard:
    def __init__(self, inner, *, prefix: str, max_upload_size: int, max_request_body: int,
                 public_base_url: str, store: Store, storage: StagingStorage, locks: UploadLocks,
                 sessions: Sessions, targets: Targets, bus: EventBus,
                 media_types: Callable[[], Awaitable[frozenset[str]]], room: Room, stall_seconds: float = 20.0):
        self.inner = inner
        self.prefix = prefix.rstrip("/")
        self.max_upload_size = max_upload_size
        self.max_request_body = max_request_body
        self.public_base_url = public_base_url
        self.store, self.storage, self.locks = store, storage, locks
        self.sessions, self.targets, self.bus = sessions, targets, bus
        self.media_types = media_types
        self.stall_seconds = stall_seconds
        self.room = room
        self.on_created = lambda: None  # e.g. a metrics counter
        self.on_patch = lambda upload: None  # a notice before an accepted PATCH goes in (the relay)
        self._creating: set[str] = set()  # uploads whose creation tuspyserver has not answered yet
        self._refusals_noted = RateLimiter({"noted": REFUSALS_NOTED}, seconds=3600)
        inner.add_exception_handler(UploadGone, self._gone)

    async def __call__(self, scope, receive, send) -> None:
        headers = _headers(scope)
        method = scope["method"]
        try:
            tail, scope = self._route(scope)
            if method == "OPTIONS":
                return await _respond(send, 204, None, {
                    "Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS,
                    "Tus-Max-Size": str(self.max_upload_size)})
            if "x-http-method-override" in headers:
                raise Refuse(400, "X-HTTP-Method-Override is not supported.")
            if headers.get("tus-resumable") != TUS_VERSION:
                raise Refuse(412, "Tus-Resumable 1.0.0 is required.", {"Tus-Version": TUS_VERSION})
            if method in ("POST", "PATCH", "DELETE"):
                self._check_origin(scope, headers)
            session = self.sessions.from_scope(scope)
            if method == "POST" and not tail:
                try:
                    return await self._create(scope, receive, send, headers, session)
                except Refuse as refusal:
                    await self._note_refusal(scope, headers, refusal, session)
                    raise
            if method not in ("HEAD", "PATCH", "DELETE"):
                raise Refuse(405, "Method not allowed.", {"Allow": "OPTIONS, POST, HEAD, PATCH, DELETE"})
            upload, invite = await self._own_upload(tail, session, with_invite=method == "PATCH")
            if upload.state == UploadState.FAILED and method != "PATCH":  # never resumed nor told complete
                raise _not_found()
            if method == "HEAD":
                if upload.received_at is not None and upload.state != UploadState.RECEIVING:
                    # every byte is here, its staged copy perhaps delivered and gone: a client that
                    # missed the last PATCH's answer learns it is complete, and does not send the
                    # file again as a new upload (the guest would see it come back "already there")
                    size = str(upload.size)
                    return await _respond(send, 200, None, {"Upload-Offset": size, "Upload-Length": size})
                # An older request of this session still writing (a dead connection, most likely) is
                # asked to stop first, so the offset told is the bytes on disk the next PATCH can follow.
                await self.locks.let_go(upload.id, RELEASE_WAIT)
                return await self.inner(scope, receive, send)
            if method == "PATCH":
                return await self._patch(scope, receive, send, headers, upload, invite)
            return await self._terminate(scope, receive, send, upload)
        except Refuse as refusal:
            await _respond(send, refusal.status, refusal.message, refusal.headers, refusal.code, refusal.params)

    # --- checks -------------------------------------------------------------------
    def _route(self, scope) -> tuple[str, dict]:
        """(upload id or "" for the collection, the scope tuspyserver gets). Its router answered a
        trailing slash or a doubled one with a 307 after the guard had taken an upload's lock or a
        creation's place (probe); "/api/uploads/" and "/api/uploads/<id>/" are taken as written
        without it, anything deeper is not found."""
        rest = scope["path"][len(self.prefix):]
        tail = rest.strip("/")
        if rest not in (("", "/") if not tail else (f"/{tail}", f"/{tail}/")) or "/" in tail:
            raise _not_found()
        path = self.prefix + (f"/{tail}" if tail else "")
        if path != scope["path"]:
            scope = {**scope, "path": path, "raw_path": path.encode()}
        return tail, scope

    def _check_origin(self, scope, headers: dict[str, str]) -> None:
        if not same_origin(scope.get("scheme", "http"), headers.get("host", ""), headers.get("origin"),
                           self.public_base_url):
            raise Refuse(403, "Cross-origin uploads are not allowed.", code="cross_origin")

    async def _own_upload(self, uid: str, session: str | None, with_invite: bool) -> tuple[Upload, Invite | None]:
        """This session's upload `uid` (and, `with_invite`, its invite if it came through a link, read
        in the same hop: a PATCH checks the link is still open); 404 for any other."""
        upload, invite = None, None
        if UID.match(uid):
            upload, invite = await self.store.upload_and_invite(uid) if with_invite \
                else (await self.store.get_upload(uid), None)
        if upload is None or session is None or upload.session_id != session:
            raise _not_found()
        return upload, invite

    # --- creation -----------------------------------------------------------------
    async def _create(self, scope, receive, send, headers: dict[str, str], session: str | None) -> None:
        if session is None:
            raise Refuse(403, "Open the upload page first: this browser has no upload session.", code="no_session")
        if "upload-concat" in headers:
            raise Refuse(400, "Concatenation is not supported.")
        if "upload-defer-length" in headers:
            raise Refuse(400, "Upload-Length must be known at creation (deferred length is not supported).")
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
            raise Refuse(400, "Creation with upload is not supported: send the data with PATCH.")
        length = _integer(headers.get("upload-length"), "Upload-Length")
        if length <= 0:
            raise Refuse(400, "This file is empty.", code="empty")
        if length > self.max_upload_size:
            raise Refuse(413, f"This file is larger than the {size_text(self.max_upload_size)} allowed.",
                         code="too_large", params={"size": self.max_upload_size})
        if len(headers.get("upload-metadata", "")) > MAX_METADATA:
            raise Refuse(431, f"Upload-Metadata may take at most {MAX_METADATA} bytes.", code="bad_request",
                         params={"limit": MAX_METADATA})
        meta = parse_metadata(headers.get("upload-metadata", ""))
        filename = clean_filename(meta.get("filename", ""))
        if not filename:
            raise Refuse(400, "Upload-Metadata must include filename.")
        if not meta.get("filetype"):
            raise Refuse(400, "Upload-Metadata must include filetype.")
        suffix = PurePosixPath(filename).suffix.lower()
        if suffix not in await self.media_types():
            if not suffix:
                raise Refuse(415, "Files without an extension cannot go into a photo library.", code="no_extension")
            raise Refuse(415, f"Files of type {suffix} cannot go into a photo library.", code="type_not_accepted",
                         params={"ext": suffix})
        key = meta.get("uploadKey") or None
        if key is not None and not UPLOAD_KEY.fullmatch(key):
            raise Refuse(400, "Upload-Metadata uploadKey must be 16 to 64 letters, digits, - or _.")
        if key is not None and RETRY_HEADER in headers:
            token = meta.get("invite")
            earlier = await self.store.created_with_key(session, key, token_hash(token) if token else None)
            if earlier is not None and (earlier.size, earlier.filename) == (length, filename):
                return await self._created_before(scope, send, earlier)
        try:  # before anything is reserved
            name, message = clean_guest_fields(meta.get("guestName"), meta.get("guestMessage"), "optional")
        except GuestFieldsRefused as refused:
            raise Refuse(400, refused.message, code=refused.code) from None
        # what the quotas count (tus/room.py): an IPv6 address by its /64
        address = address_key(scope["client"][0])[:64] if scope.get("client") else None
        upload = Upload(id=_new_uid(), session_id=session, client_address=address, target_kind="", target_id=None,
                        filename=filename, filetype=clean_filetype(meta["filetype"]), size=length,
                        guest_name=name, guest_message=message,
                        last_modified_ms=_optional_int(meta.get("lastModified"), 0, 10**14),
                        tz_offset_minutes=_optional_int(meta.get("tz"), -16 * 60, 16 * 60),
                        tz_name=zone_name(meta.get("tzName")), client_key=key)
        self._creating.add(upload.id)  # from before its row exists until it is made or gone
        try:
            await self._make(scope, receive, send, session, upload, meta, address)
        finally:
            self._creating.discard(upload.id)

    async def _make(self, scope, receive, send, session: str, upload: Upload, meta: dict[str, str],
                    address: str | None) -> None:
        """Reserve `upload`'s place in its target, record it (within the room left) and have
        tuspyserver create it; a creation that does not end in 201 leaves no row, no file and no
        reservation behind."""
        try:
            # Checked, counted, reserved and recorded as one step: a burst cannot pass on one count,
            # and no creation waits here holding a reservation a kill -9 would leave behind for good
            # (a burst of 40 left 38 places taken with no upload: attack run). The room is asked
            # before the link's place and use are taken: a refusal for room takes neither.
            async with self.room.gate:
                place = await self.targets.check(meta, session, upload.size, upload.filename)
                upload.target_kind, upload.target_id = place.kind, place.target_id
                if place.guest_fields == "hidden":  # where the page does not ask, a client sending them is not heard
                    upload.guest_name, upload.guest_message = "", ""
                await self.room.check(place.kind, session, address, upload.size)
                await self.targets.take(place, session, upload.size)
                try:
                    await self.store.add_upload(upload)
                except Exception:  # the database refused the row: its place goes back
                    # (not on a cancel: the row may be written still, and the janitor ends a row
                    # with no files, giving its place back then: given back here too, it went twice)
                    await self.targets.release(upload)
                    raise
        except TargetClosed as closed:
            raise Refuse.of(closed) from None
        scope.setdefault("state", {})["tus_uid"] = upload.id
        self.storage.fresh(upload.id)
        # tuspyserver keeps the metadata in the sidecar and logs it: it gets the name and type only, so no
        # link token lies on disk or reaches a log (the row already holds all the rest).
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"upload-metadata"] + [
            (b"upload-metadata", f"filename {_b64(upload.filename)},filetype {_b64(upload.filetype)}".encode())]
        status = 0
        # tuspyserver's creation says its own expiry (days_to_keep, ten years out); the one that holds
        # is the staging sweep's: idle for UPLOAD_EXPIRY_HOURS from now, as HEAD and PATCH then say
        expires = formatdate(time.time() + self.storage.expiry_seconds, usegmt=True).encode()

        async def with_expiry(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [(k, expires if k.lower() == b"upload-expires" else v)
                                                  for k, v in message.get("headers", [])]}
            await send(message)

        try:
            status = await _forward(self.inner, scope, receive, with_expiry)
        finally:
            if status == 201:
                self.bus.publish(session, upload_event(upload))
                self.on_created()
            else:  # refused or crashed
                await self.storage.delete(upload.id)
                if await self.store.delete_upload(upload.id):  # (else its owner removed it: place given back)
                    await self.targets.release(upload)

    async def _created_before(self, scope, send, upload: Upload) -> None:
        """Answer a later creation of the same file (its page's earlier one reached us, its answer
        did not) with the upload the earlier one made: nothing new is reserved or written. A tus
        client then sends from offset 0; should bytes already be there, it hears 409 and asks HEAD
        where to go on. 423 while the earlier one is still being made, here or by another replica
        (its staged files not both there yet): the page asks again."""
        if upload.id in self._creating or not await self.storage.made(upload.id):
            raise Refuse(423, "This file is still being created.", code="busy")
        location = get_request_headers(Request(scope), upload.id, prefix=self.prefix)["location"]
        await _respond(send, 201, None, {"Location": location})

    async def _note_refusal(self, scope, headers: dict[str, str], refusal: Refuse, session: str | None) -> None:
        """A creation through an invite link was refused for a reason its guest can meet: log it for the
        owner, REFUSALS_NOTED an hour per address and link at most (anyone with a link wrote 300 in 3 s,
        "Your link is compromised, visit …" among them, and the owner's real refusals were pushed out
        of the 200 kept: attack run). The refusal itself is answered all the same."""
        if refusal.code not in LOGGED:
            return
        try:
            meta = parse_metadata(headers.get("upload-metadata", ""))
            # what a database column holds: a length of 30 digits, refused as too large, is logged as 0
            length = min(_integer(headers.get("upload-length") or "0", "Upload-Length"), 2**62)
        except Refuse:
            return
        address = address_key(scope["client"][0]) if scope.get("client") else ""  # (an IPv6 one by its /64)
        if meta.get("invite") and not self._refusals_noted.attempt(("noted", address, meta["invite"])):
            await self.targets.note_refusal(meta, clean_filename(meta.get("filename", "")), length,
                                            refusal.code, refusal.message, session)

    # --- data -----------------------------------------------------------------------
    async def _patch(self, scope, receive, send, headers: dict[str, str], upload: Upload,
                     invite: Invite | None) -> None:
        if headers.get("content-type") != "application/offset+octet-stream":
            raise Refuse(415, "Content-Type must be application/offset+octet-stream.")
        if "content-length" not in headers:
            raise Refuse(411, "Content-Length is required.")
        body = _integer(headers["content-length"], "Content-Length")
        if body > self.max_request_body:
            raise Refuse(413, f"A PATCH may carry at most {self.max_request_body} bytes.")
        offset = _integer(headers.get("upload-offset"), "Upload-Offset")
        if upload.state not in (UploadState.RECEIVING, UploadState.FAILED):
            raise Refuse(409, "This upload is already complete.", {"Upload-Offset": str(upload.size)}, code="complete")
        try:
            await self.targets.open_for_upload(upload.target_kind, upload.target_id, invite)
            if invite is not None and invite.password_hash:  # only links with a password pay this read
                # a changed password locks the browsers that gave the old one, their files on the way
                # too (they went on to the end: attack run); the bytes stay, for when it is given
                await self.targets.unlocked(invite, upload.session_id)
        except TargetClosed as closed:
            raise Refuse.of(closed) from None
        if upload.state == UploadState.FAILED:
            # ended (expired, say) while its link stayed open. 409, which a tus client (tus-js-client
            # included) answers with HEAD, hears 404 there and sends the file anew; a 404 here would
            # end the file as failed in the guest's page instead.
            raise _ended()
        # the lock, and read under it in the same thread hop: the bytes on disk (the storage answers
        # tuspyserver from that) and the room left on the staging disk
        want = min(SIGNATURE_BYTES, upload.size)

        def under_lock():  # and the bytes kept so far while fewer than the check needs (tiny chunks)
            size = self.storage.snapshot(upload.id)
            return size, self.room.writable_now(), self.storage.prefix(upload.id, size) if size < want else b""

        held = await self.locks.take_over(upload.id, RELEASE_WAIT, then=under_lock)
        if held is None:
            raise Refuse(423, "This upload is being written by another request.", code="busy")
        body_watch = BodyWatch(receive, self.stall_seconds)
        held.stop = body_watch.stop
        try:
            on_disk, room, kept = held.value
            if offset != on_disk:
                raise Refuse(409, "Upload-Offset does not match the bytes received.", {"Upload-Offset": str(on_disk)})
            if offset + body > upload.size:
                raise Refuse(400, "The data would go past Upload-Length.")
            if body > room:  # an upload's reservation may have lapsed (room.py): the disk is not filled to 0
                raise Refuse(507, NO_SPACE, code="no_space")
            if invite is not None:  # the owner may have changed what the link takes since it began
                try:
                    check_file(invite, upload.filename, upload.size)
                except TargetClosed as closed:
                    await self._end_refused(upload, Refuse.of(closed))
            receive_body = body_watch
            # the file's first bytes: plainly not a photo or video? Judged by the PATCH that brings
            # the last of them, with those kept from earlier ones: a tus client may send tiny chunks,
            # and a first PATCH of one byte let any content through (attack run). The check is for
            # files renamed by mistake (a client that means to can always begin with a photo's bytes).
            if offset < want <= offset + body:
                head, receive_body = await first_bytes(body_watch, want - offset)
                if head is not None and not matches_name(kept + head, upload.filename):
                    await self._end_mismatch(upload)
            self.on_patch(upload)
            await self.inner(scope, receive_body, _before_start(body_watch.wrap_send(send), held.release))
            if body_watch.ended:
                log.info("upload %s: PATCH ended (%s) at %d bytes on disk", upload.id, body_watch.ended,
                         await self.storage.size(upload.id))
        finally:
            await held.release()

    async def _gone(self, request: Request, exc: UploadGone) -> Callable:
        """A PATCH found its upload's staged file gone under it (`UploadGone`, raised by the storage
        while tuspyserver writes): the answer is its link's refusal if the link closed (deleted, most
        likely), else what an ended upload hears (409: a tus client asks again and sends it anew)."""
        refusal = _ended()
        upload, invite = await self.store.upload_and_invite(exc.args[0])
        if upload is not None:
            try:
                await self.targets.open_for_upload(upload.target_kind, upload.target_id, invite)
            except TargetClosed as closed:
                refusal = Refuse.of(closed)

        async def answer(scope, receive, send) -> None:
            await _respond(send, refusal.status, refusal.message, refusal.headers, refusal.code, refusal.params)

        return answer

    async def _end_mismatch(self, upload: Upload) -> None:
        """Refuse a file named as a photo or video whose first bytes are plainly something else (a text
        file named .jpg, `media.matches_name`), before one is written: the upload ends (its row, staged files and place in the link's limits go, as
        a cancel does) and its link's owner sees the refusal in the log. Called under its lock."""
        ext = PurePosixPath(upload.filename).suffix.lower()
        message = f"This file is named like a photo or video ({ext}), but its content is not one."
        await self._end_refused(upload, Refuse(415, message, code="not_media", params={"ext": ext}))

    async def _end_refused(self, upload: Upload, refusal: Refuse) -> None:
        """End an upload still receiving that its link no longer takes (its first bytes are not what
        its name says, or the owner lowered the size allowed or changed the kinds since it began:
        the README promises such files stop and say why): its row, staged files and place in the
        link's limits go, as a cancel does, and the owner's log shows the refusal. Called under its lock."""
        # (False: its last byte won a race, it is a delivery now and its file needed)
        if not await end_receiving(self.store, self.targets, self.bus, upload):
            raise Refuse(409, "This upload is already complete.", {"Upload-Offset": str(upload.size)}, code="complete")
        await self.storage.delete(upload.id)
        await self.targets.note_refused_upload(upload, refusal.code, refusal.message)
        raise refusal

    async def _terminate(self, scope, receive, send, upload: Upload) -> None:
        if upload.state != UploadState.RECEIVING:
            raise _being_delivered()
        held = await self.locks.take_over(upload.id, RELEASE_WAIT)
        if held is None:
            raise Refuse(423, "This upload is being written by another request.", code="busy")

        async def forget(status: int) -> None:
            if status == 204:
                await end_receiving(self.store, self.targets, self.bus, upload)
            await held.release()

        try:
            # Read again under the lock: the PATCH it took over may have written the last byte
            # meanwhile, and its completion hook (run before that PATCH let go) made the file a
            # delivery. Deleted then, it reached Immich while the guest heard "cancelled" and its
            # place in the link's limits was given back (an attack run filled an album past its
            # file limit that way).
            now = await self.store.get_upload(upload.id)
            if now is None or now.state == UploadState.FAILED:
                raise _not_found()
            if now.state != UploadState.RECEIVING:
                raise _being_delivered()
            await self.inner(scope, receive, _before_start(send, forget, with_status=True))
        finally:
            await held.release()


# --- helpers ---------------------------------------------------------------------------
def parse_metadata(raw: str) -> dict[str, str]:
    """tus `Upload-Metadata` ("key base64, key base64") to a dict; refuses undecodable values."""
    meta: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        key, _, value = pair.partition(" ")
        try:
            meta[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value else ""
        except (ValueError, UnicodeDecodeError):
            raise Refuse(400, f"Upload-Metadata value for {key!r} is not valid base64 UTF-8.") from None
    return meta


_EDGES = re.compile(f"^[\\s{JOINERS}]+|[\\s{JOINERS}]+$")  # spaces, and joiners joining nothing


def clean_filename(name: str) -> str:
    """The base name only, without control or format characters (bidi overrides among them) but the
    joiners an emoji or a Persian word is spelled with (JOINERS: "👰‍♀️" arrived as "👰♀️": walk), at
    most 255 characters (extension kept)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _EDGES.sub("", "".join(ch for ch in unicodedata.normalize("NFC", name)
                                  if ch in JOINERS or unicodedata.category(ch)[0] != "C"))
    if name in (".", ".."):
        return ""
    if len(name) > 255:
        suffix = PurePosixPath(name).suffix[:16]
        name = name[: 255 - len(suffix)] + suffix
    return name


_ZONE = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")


def clean_filetype(text: str) -> str:
    """The browser's `file.type` as kept: printable ASCII, at most 255 characters. A NUL in it made
    PostgreSQL refuse the row, after the link's limits were reserved (attack run)."""
    return "".join(ch for ch in text if " " <= ch <= "~")[:255].strip() or "application/octet-stream"


def zone_name(text: str | None) -> str | None:
    """The browser's IANA time zone name ("Europe/Berlin"), or None when it is not one: only a hint
    for a file that holds no offset of its own."""
    return text if text and len(text) <= 64 and _ZONE.fullmatch(text) else None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


def _ended() -> Refuse:
    return Refuse(409, "This upload has ended; the file must be sent again.", code="not_found")


def _not_found() -> Refuse:
    """One answer for an upload that is not this session's, and for a failed one a client asks about:
    the same 404, so ids cannot be probed."""
    return Refuse(404, "Upload not found.", code="not_found")


def _being_delivered() -> Refuse:
    """A cancel of an upload that has all its bytes: asked before its lock, and again under it."""
    return Refuse(409, "This upload is complete and is being delivered; it cannot be cancelled.", code="complete")


def _new_uid() -> str:
    return uuid.uuid4().hex


def _integer(value: str | None, name: str) -> int:
    if value is None:
        raise Refuse(400, f"{name} is required.")
    if value.startswith("-") and value[1:].isascii() and value[1:].isdigit():
        raise Refuse(400, f"{name} must not be negative.")
    # digits only, as tus says: int() also takes "+5", "1_000", " 7" and other scripts' digits
    if not (value.isascii() and value.isdigit()) or len(value) > 30:
        raise Refuse(400, f"{name} must be a whole number.")
    return int(value)


def _optional_int(value: str | None, low: int, high: int) -> int | None:
    try:
        number = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and low <= number <= high else None


def _headers(scope) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        result[key] = f"{result[key]}, {text}" if key in result else text
    return result



def _before_start(send, action, *, with_status: bool = False):
    """Wrap `send` so `action` (given the status if `with_status`) finishes before the client
    sees the response: a client's next request must never find this one's lock still held."""

    async def wrapped(message):
        if message["type"] == "http.response.start":
            await (action(message["status"]) if with_status else action())
        await send(message)

    return wrapped


async def _forward(app, scope, receive, send) -> int:
    """Call `app` and return the status it answered with."""
    status = 0

    async def watch(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    await app(scope, receive, watch)
    return status


async def _respond(send, status: int, message: str | None, headers: dict[str, str], code: str | None = None,
                   params: dict | None = None) -> None:
    body = json.dumps({"message": message, "code": code, "params": params or {}} if code else {"message": message}
                      ).encode() if message else b""
    raw = [(b"tus-resumable", TUS_VERSION.encode()), (b"cache-control", b"no-store"),
           (b"content-length", str(len(body)).encode())]
    if body:
        raw.append((b"content-type", b"application/json"))
    raw += [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
