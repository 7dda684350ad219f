"""The admin's invites, as JSON under `/api/invites` (documented in the README).

    GET    /api/invites                 → [invite]            the signed-in admin's own, newest first
    POST   /api/invites  {fields}       → 201 invite
    GET    /api/invites/{id}            → invite
    PATCH  /api/invites/{id} {fields}   → invite              (any field, also album and "disabled")
    DELETE /api/invites/{id}            → 204                 undelivered files of the link are removed
    GET    /api/invites/{id}/uploads    → [{id, filename, size, state, code, message, guestName, createdAt}]
    DELETE /api/invites/{id}/uploads    → {removed, moving}   every file of the link stopped on its way
    DELETE /api/invites/{id}/uploads/{uid} → 204               one file still on its way (409 if moving)
    GET    /api/invites/{id}/qr.svg|png → the link as a QR code (PNG: a printable card with the title and link)

Fields: `label` (private), `title` (what guests see); `album` (null, {"id"} of an existing album, or
{"name"} of a new one); `maxUses` (1 = one-time, N, null = unlimited); `expiresAt` (ISO-8601 with a timezone, or null = never) or
`expiresInDays`; `password` (null = none); `maxFileSize`, `maxTotalBytes`, `maxFiles` (null = no
limit; `maxFileSize` at most MAX_UPLOAD_SIZE); `mediaKind` ("all", "photos", "videos"); `guestFields`
("optional", "required", "hidden": the guest's name and message); `archive` (files arrive archived: in
the album, not in the timeline); `disabled` (PATCH). Refusals answer 400 with `errors: {field: {code,
message, params}}`, every bad field at once. Another admin's invite is 404.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import unicodedata
import uuid
from datetime import datetime, timedelta, timezone

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import i18n, qrcard
from ..crypto import hash_password, new_token, token_hash
from ..guest_fields import MODES, one_line
from ..i18n import size_text
from ..models import Invite, InviteState, Upload, UploadState, aware
from ..notify import LINK_CHANGED, link_channel
from ..targets import CLOSED, invite_state
from ..tus.guard import end_receiving
from ..tus.room import RESERVATION_IDLE
from .admin import immich_call, require_admin
from .errors import ApiError, FieldErrors, json_body

NO_STORE = {"Cache-Control": "no-store"}  # on every answer that carries a link token (a link, its QR code)
MAX_COUNT = 1_000_000  # uses or files of one link (the columns are 32-bit)
MAX_BYTES = 2**53  # bytes: what JavaScript holds exactly
# "1,000" in a size: a thousands separator or a decimal one? The console sends it as typed, to be asked
# (a count it reads as a thousand itself). The same pattern as the console's, ASCII digits only.
GROUPED = re.compile(r"[1-9][0-9]{0,2}([.,\u00a0\u202f ][0-9]{3})+")
LIMITS = {"maxFileSize": "max_file_size", "maxTotalBytes": "max_total_bytes", "maxFiles": "max_files"}
TEXTS = {"label": 200, "title": 200}


def invite_json(invite: Invite, link: str, key_valid: bool, max_upload_size: int | None = None) -> dict:
    return {
        "id": invite.id, "label": invite.label, "title": invite.title, "link": link, "state": invite_state(invite),
        "albumId": invite.album_id, "albumName": invite.album_name,
        "maxUses": invite.max_uses, "uses": invite.uses, "expiresAt": _iso(invite.expires_at),
        "hasPassword": bool(invite.password_hash), "disabled": invite.disabled, "archive": invite.archive,
        "limits": {"maxFileSize": capped(invite.max_file_size, max_upload_size), "maxTotalBytes": invite.max_total_bytes,
                   "maxFiles": invite.max_files, "mediaKind": invite.media_kind},
        "guestFields": invite.guest_fields,
        "files": invite.files, "bytes": invite.bytes, "lastUploadAt": _iso(invite.last_upload_at),
        "createdAt": _iso(invite.created_at), "ownerMustSignIn": not key_valid,
    }


def capped(limit: int | None, server_max: int | None) -> int | None:
    """A link's file limit as it really holds: never above what the server takes."""
    if limit is None or server_max is None:
        return limit
    return min(limit, server_max)


def link_for(request: Request, invite: Invite) -> str:
    services = request.app.state.services
    base = services.settings.public_base_url or f"{request.url.scheme}://{request.headers.get('host', '')}"
    return f"{base}/i/{services.box.open(invite.token_enc) or ''}"


def as_json(request: Request, invite: Invite, account) -> dict:
    return invite_json(invite, link_for(request, invite), account.key_valid,
                       request.app.state.services.settings.max_upload_size)


async def fields(body: dict, creating: bool, server_max: int, hasher, current: Invite | None = None) -> dict:
    """Validated model values from a JSON body; every refusal is collected, then one ApiError 400
    carries them per field, with a code (translated by the console) and a sentence for people."""
    values: dict = {}
    bad = FieldErrors()
    for name, longest in TEXTS.items():
        if name in body or creating:
            text = "" if body.get(name) is None else body[name]
            if not isinstance(text, str):  # 0, false or [] were saved as "" without a word (attack run)
                bad.add(name, "text_invalid", "Write it as text.")
            elif len(text) > longest:
                bad.add(name, "text_too_long", f"At most {longest} characters.", max=longest)
            else:
                values[name] = one_line(text)
    if "maxUses" in body:
        uses = body["maxUses"]
        if uses is not None and not _whole(uses, MAX_COUNT):
            bad.add("maxUses", "uses_number", f"Give how many browsers may use the link: a whole number from 1 to "
                                              f"{MAX_COUNT:,}.", max=MAX_COUNT)
        else:
            values["max_uses"] = uses
    if "expiresInDays" in body and body["expiresInDays"] is not None:
        days = body["expiresInDays"]
        # whole days, as the message says: 1e-300 made a link expired at birth (attack run)
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not 1 <= days <= 3650 or days % 1:
            bad.add("expiresAt", "expiry_days", "Give a number of days between 1 and 3650.")
        else:
            values["expires_at"] = datetime.now(timezone.utc) + timedelta(days=days)
    elif "expiresAt" in body:
        moment = _moment(body["expiresAt"], bad)
        unchanged = current is not None and current.expires_at is not None and moment is not None \
            and aware(current.expires_at) == moment
        if moment is not None and moment <= datetime.now(timezone.utc) and not unchanged:
            bad.add("expiresAt", "expiry_past", "This date is in the past: pick a later one. "
                                                 "(To stop a link now, use its Disable button.)")
        elif "expiresAt" not in bad.errors:
            values["expires_at"] = moment
    if "password" in body:
        password = body["password"]
        if password is not None and (not isinstance(password, str) or not 4 <= len(password) <= 200):
            bad.add("password", "password_length", "A password has 4 to 200 characters.", min=4, max=200)
        else:
            values["password_hash"] = await hasher.run(hash_password, password, refuse=False) if password else None
    for name, column in LIMITS.items():
        if name not in body:
            continue
        limit = body[name]
        if name != "maxFiles" and isinstance(limit, str) and GROUPED.fullmatch(limit.strip()):
            bad.add(name, "limit_grouped", "Is that a thousands separator? Write the number without one: 1000, "
                                           "or 1.5 for one and a half.")
        elif limit is not None and name == "maxFiles" and not _whole(limit, MAX_COUNT):
            bad.add(name, "count_number", f"A whole number from 1 to {MAX_COUNT:,}, or empty for no limit.", max=MAX_COUNT)
        elif limit is not None and not _whole(limit, MAX_BYTES):
            bad.add(name, "limit_number", "A number above 0, or empty for no limit.")
        elif name == "maxFileSize" and limit is not None and limit > server_max:
            bad.add(name, "limit_above_server", f"This server takes files up to {size_text(server_max)}: "
                                                "give at most that.", max=server_max)
        else:
            values[column] = limit
    if "mediaKind" in body:
        if body["mediaKind"] not in ("all", "photos", "videos"):
            bad.add("mediaKind", "kind_invalid", "Choose photos and videos, photos only or videos only.")
        else:
            values["media_kind"] = body["mediaKind"]
    if "guestFields" in body:
        if body["guestFields"] not in MODES:
            bad.add("guestFields", "guest_fields_invalid", "Choose whether guests give their name: optional, "
                                                            "required or not asked.")
        else:
            values["guest_fields"] = body["guestFields"]
    for flag in ("archive", "disabled"):
        if flag in body and (creating is False or flag == "archive"):
            if not isinstance(body[flag], bool):
                bad.add(flag, "boolean", "Yes or no (true or false).")
            else:
                values[flag] = body[flag]
    if "album" in body and body["album"] is not None:
        album = body["album"]
        if not isinstance(album, dict) or not (isinstance(album.get("id"), str) and 0 < len(album["id"]) <= 64
                                               or not album.get("id") and isinstance(album.get("name"), str)):
            bad.add("album", "album_invalid", "Choose an album, a new album or none.")
        elif not album.get("id") and not (name := one_line(album["name"])):
            bad.add("album", "album_name_missing", "Give the new album a name.")
        elif not album.get("id") and len(name) > 255:
            bad.add("album", "text_too_long", "At most 255 characters.", max=255)
    bad.raise_if_any()
    return values


async def album_values(services, account, body: dict) -> dict:
    """The album columns for `body["album"]` (already checked by `fields`): an existing album of the
    admin's, a new one made now, or none. A "new" album named like one the admin already owns is
    that album: two links made for the same "Trip" fill one album, not two of the same name whose
    photos are split between them and which the album list cannot tell apart (owner walk). That is
    how IMMICH_ALBUM_NAME finds its album too."""
    if "album" not in body:
        return {}
    album = body["album"]
    if album is None:
        return {"album_id": None, "album_name": ""}
    if album.get("id"):
        known = {a["id"]: a for a in await immich_call(services, account, services.immich.writable_albums,
                                                       account.user_id)}
        if album["id"] not in known:
            bad = FieldErrors()
            bad.add("album", "album_unknown", "This album is not in your library (any more), or you may only "
                                              "view it: choose another.")
            bad.raise_if_any()
        return {"album_id": album["id"], "album_name": known[album["id"]].get("albumName", "")}
    name = one_line(album["name"])
    return {"album_id": await immich_call(services, account, services.immich.find_or_create_album, name),
            "album_name": name}


async def list_or_create(request: Request) -> Response:
    services = request.app.state.services
    if request.method == "GET":
        _, account = await require_admin(request)
        invites = await services.store.invites_of(account.user_id)
        return JSONResponse([as_json(request, i, account) for i in invites], headers=NO_STORE)
    _, account = await require_admin(request, write=True)
    body = await json_body(request)
    values = await fields(body, creating=True, server_max=services.settings.max_upload_size, hasher=services.hasher)
    values.update(await album_values(services, account, body))
    token = new_token()
    invite = Invite(id=uuid.uuid4().hex, token_hash=token_hash(token), token_enc=services.box.seal(token),
                    owner_id=account.user_id, **values)
    await services.store.add(invite)
    return JSONResponse(as_json(request, invite, account), status_code=201, headers=NO_STORE)


async def own_invite(request: Request, write: bool = False):
    _, account = await require_admin(request, write=write)
    invite = await request.app.state.services.store.get_invite(request.path_params["id"])
    if invite is None or invite.owner_id != account.user_id or invite.deleted_at is not None:
        raise ApiError(404, "No such invite.", code="no_such_invite")
    return invite, account


async def one(request: Request) -> Response:
    services = request.app.state.services
    if request.method == "GET":
        invite, account = await own_invite(request)
        return JSONResponse(as_json(request, invite, account), headers=NO_STORE)
    invite, account = await own_invite(request, write=True)
    if request.method == "PATCH":
        body = await json_body(request)
        values = await fields(body, creating=False, server_max=services.settings.max_upload_size,
                              hasher=services.hasher, current=invite)
        values.update(await album_values(services, account, body))
        if values:
            invite = await services.store.update_invite(invite.id, **values)
            if invite.closed_noticed and invite_state(invite) == InviteState.ACTIVE:
                invite = await services.store.update_invite(invite.id, closed_noticed=False)  # open again: tell again
            services.bus.publish(link_channel(invite.id), LINK_CHANGED)
        return JSONResponse(as_json(request, invite, account), headers=NO_STORE)
    await services.store.update_invite(invite.id, deleted_at=datetime.now(timezone.utc))
    services.bus.publish(link_channel(invite.id), LINK_CHANGED)
    await services.pipeline.drop_link(invite.id, "The link was deleted by its owner; this file was not sent.")
    return Response(status_code=204)


async def uploads(request: Request) -> Response:
    """The link's log, newest first: its uploads and the attempts it refused (state "refused", with a
    `code`: too_large, photos_only, videos_only, wrong_type, limit_reached, used_up, ...)."""
    if request.method == "DELETE":
        return await remove_stopped(request)
    invite, _ = await own_invite(request)
    services = request.app.state.services
    store = services.store
    uploads = await store.uploads_of_invite(invite.id)
    rows = [{"id": u.id, "filename": u.filename, "size": u.size, "state": u.state, "code": None,
             "message": u.message, "guestName": u.guest_name, "guestMessage": u.guest_message,
             "createdAt": _iso(u.created_at)} for u in uploads]
    progress = await _on_their_way(services, invite, [u for u in uploads if u.state == UploadState.RECEIVING])
    for row in rows:
        if row["id"] in progress:
            row["received"], row["stopped"] = progress[row["id"]]
    rows += [{"id": f"refused-{r.id}", "filename": r.filename, "size": r.size, "state": "refused", "code": r.code,
              "message": r.message, "guestName": r.guest_name, "guestMessage": "",
              "createdAt": _iso(r.created_at)}
             for r in await store.refusals_of(invite.id)]
    rows.sort(key=lambda row: row["createdAt"] or "", reverse=True)
    return JSONResponse(rows, headers=NO_STORE)


async def _on_their_way(services, invite: Invite, uploads: list[Upload]) -> dict[str, tuple[int, bool]]:
    """(bytes received, stopped) of each of the link's files still arriving. "arriving" stayed for
    good on a file whose link expired at 22% and whose guest had gone (owner walk): such a file has
    "stopped" once its link is closed or no byte came for RESERVATION_IDLE. One with no staged file
    yet is being created (its row comes first), or was left by a crash: stopped only once its row
    is RESERVATION_IDLE old (removed in between, a creation under way lost its row: cold review)."""
    staged = await services.storage.staged([u.id for u in uploads]) if uploads else {}
    closed, idle_since = invite_state(invite) in CLOSED, time.time() - RESERVATION_IDLE
    out = {}
    for upload in uploads:
        made = aware(upload.created_at).timestamp() if upload.created_at else 0.0
        if upload.id in staged:
            received, written = staged[upload.id]
            out[upload.id] = (received, closed or written < idle_since)
        else:
            out[upload.id] = (0, made < idle_since)
    return out


async def _remove(services, upload: Upload, invite: Invite | None = None) -> bool:
    """End one file still receiving, as a guest's cancel does, told to its page as the owner's doing;
    False, and nothing changed, if a PATCH writes it right now or it is no longer receiving. With
    `invite`, only if it is still stopped once its lock is held (its guest may have sent a PATCH
    since the log was read: cold review)."""
    held = await services.storage.locks.try_acquire(upload.id) if upload.state == UploadState.RECEIVING else None
    if held is None:
        return False
    try:
        if invite is not None and not (await _on_their_way(services, invite, [upload]))[upload.id][1]:
            return False
        if not await end_receiving(services.store, services.targets, services.bus, upload, why="owner"):
            return False
        await services.storage.delete(upload.id)
        return True
    finally:
        await held.release()


async def remove_stopped(request: Request) -> Response:
    """The owner ends every file of their link stopped on its way: one guest's creations that never
    send a byte can fill a link's places, and Remove one by one took as many clicks (attack run).
    Only stopped ones: a file still moving is a guest sending it now. `moving`: stopped ones a
    request took up meanwhile (left alone)."""
    invite, _ = await own_invite(request, write=True)
    services = request.app.state.services
    arriving = await services.store.receiving_of_invite(invite.id)
    progress = await _on_their_way(services, invite, arriving)
    removed = moving = 0
    for upload in arriving:
        if progress[upload.id][1]:
            if await _remove(services, upload, invite):
                removed += 1
            else:
                moving += 1
    return JSONResponse({"removed": removed, "moving": moving}, headers=NO_STORE)


async def remove_upload(request: Request) -> Response:
    """The owner ends a file still on its way through their link: its place in the link's limits goes
    back. One guest's creations that never sent a byte held a link's places for the day the janitor
    waits (attack run), and a file stopped at 22% by a guest gone for good, the same. Only a file
    still receiving, and not while a PATCH of it is under way (409)."""
    invite, _ = await own_invite(request, write=True)
    services = request.app.state.services
    uid = request.path_params["uid"]
    upload = await services.store.get_upload(uid)
    if upload is None or upload.target_kind != "invite" or upload.target_id != invite.id:
        raise ApiError(404, "No such file in this link's log.", code="no_such_upload")
    if not await _remove(services, upload):
        raise ApiError(409, "This file is being sent or delivered right now; it cannot be removed.",
                       code="upload_moving")
    return Response(status_code=204)


async def qr(request: Request) -> Response:
    if request.path_params["kind"] not in ("png", "svg"):  # qr.gif answered the SVG (attack run)
        raise HTTPException(404)  # answered as any address with no route
    invite, _ = await own_invite(request)
    link = link_for(request, invite)
    if request.path_params["kind"] == "png":
        # a guest who scans a card of a link with a password meets a form they were not told about:
        # the card says one is asked, in the console's language (`?lang=`), never the password
        lang = request.query_params.get("lang", "")
        lang = lang if lang in i18n.CATALOGS else i18n.choose(request.headers.get("accept-language"))
        note = i18n.text(lang, "admin.qr.password_note") if invite.password_hash else ""
        data = await asyncio.to_thread(qrcard.card, link, invite.title, note)
        return Response(data, media_type="image/png", headers={
            "Content-Disposition": f'attachment; filename="{_card_name(invite)}"', **NO_STORE})
    return Response(await asyncio.to_thread(_qr_svg, link), media_type="image/svg+xml", headers=NO_STORE)


def _card_name(invite) -> str:
    """The printable card's file name, from the title guests see and the link's id
    ("invite-fete-de-zoe-dddbdb52.png"): several cards named by id alone could not be told apart
    (owner walk), and the label is the owner's alone ("only you see it"), where a card's file
    travels with it (owner walk). ASCII letters and digits only, so no header can be bent."""
    plain = unicodedata.normalize("NFKD", invite.title or "").encode("ascii", "ignore").decode()
    slug = "-".join(re.findall(r"[a-z0-9]+", plain.lower()))[:40].strip("-")
    return f"invite-{slug + '-' if slug else ''}{invite.id[:8]}.png"


def _qr_svg(text: str) -> bytes:
    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathFillImage, border=2).save(out)
    return out.getvalue()


def _whole(value, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= most


def _moment(value, bad: FieldErrors) -> datetime | None:
    """An aware datetime, None for never; "" (a date field left empty) is refused, not read as never."""
    if value is None:
        return None
    if value == "":
        bad.add("expiresAt", "expiry_missing", "Pick the date and time the link expires.")
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        bad.add("expiresAt", "expiry_invalid", "Give a date and time (ISO-8601), or none for never.")
        return None
    if moment.tzinfo is None:
        bad.add("expiresAt", "expiry_timezone", "Include a timezone (Z or ±hh:mm).")
        return None
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:
        moment = datetime.min.replace(tzinfo=timezone.utc)
    # a date the console's picker allows but the server cannot keep: said as such, not "not a date"
    # (9999-12-31 read "This is not a date and time": owner walk); one long past is past
    if moment.year > 9998:
        bad.add("expiresAt", "expiry_too_far", "Pick a date before the year 9999, or never.")
        return None
    if moment.year < 2000:
        bad.add("expiresAt", "expiry_past", "This date is in the past: pick a later one.")
        return None
    return moment




def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


routes = [
    Route("/api/invites", list_or_create, methods=["GET", "POST"]),
    Route("/api/invites/{id:str}", one, methods=["GET", "PATCH", "DELETE"]),
    Route("/api/invites/{id:str}/uploads", uploads, methods=["GET", "DELETE"]),
    Route("/api/invites/{id:str}/uploads/{uid:str}", remove_upload, methods=["DELETE"]),
    Route("/api/invites/{id:str}/qr.{kind:str}", qr),
]
