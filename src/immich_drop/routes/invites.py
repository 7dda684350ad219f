"""The admin's invites, as JSON under `/api/invites` (documented in the README).

    GET    /api/invites                 → [invite]            the signed-in admin's own, newest first
    POST   /api/invites  {fields}       → 201 invite
    GET    /api/invites/{id}            → invite
    PATCH  /api/invites/{id} {fields}   → invite              (expiry, limits, password, label, disabled)
    DELETE /api/invites/{id}            → 204                 undelivered files of the link are removed
    GET    /api/invites/{id}/uploads    → [{id, filename, size, state, message, createdAt}]
    GET    /api/invites/{id}/qr.svg|png → the link as a QR code (PNG as a download, for printing)

Fields: `label`; `album` (null, {"id"} of an existing album, or {"name"} of a new one); `maxUses`
(1 = one-time, N, null = unlimited); `expiresAt` (ISO-8601 with a timezone, or null = never) or
`expiresInDays`; `password` (null = none); `maxFileSize`, `maxTotalBytes`, `maxFiles` (null = no
limit); `mediaKind` ("all", "photos", "videos"); `guestFields` ("optional", "required", "hidden": the
guest's name and message); `disabled` (PATCH). Another admin's invite is 404.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import datetime, timedelta, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..crypto import hash_password, new_token, token_hash
from ..guest_fields import MODES
from ..models import Invite, UploadState
from ..targets import invite_state
from .admin import immich_call, require_admin
from .errors import ApiError, json_body

NO_STORE = {"Cache-Control": "no-store"}  # on every answer that carries a link token (a link, its QR code)
MAX_COUNT = 1_000_000  # uses or files of one link (the columns are 32-bit)
MAX_BYTES = 2**53  # bytes: what JavaScript holds exactly
LIMITS = {"maxFileSize": "max_file_size", "maxTotalBytes": "max_total_bytes", "maxFiles": "max_files"}


def invite_json(invite: Invite, link: str, key_valid: bool) -> dict:
    return {
        "id": invite.id, "label": invite.label, "link": link, "state": invite_state(invite),
        "albumId": invite.album_id, "albumName": invite.album_name,
        "maxUses": invite.max_uses, "uses": invite.uses, "expiresAt": _iso(invite.expires_at),
        "hasPassword": bool(invite.password_hash), "disabled": invite.disabled,
        "limits": {"maxFileSize": invite.max_file_size, "maxTotalBytes": invite.max_total_bytes,
                   "maxFiles": invite.max_files, "mediaKind": invite.media_kind},
        "guestFields": invite.guest_fields,
        "files": invite.files, "bytes": invite.bytes, "lastUploadAt": _iso(invite.last_upload_at),
        "createdAt": _iso(invite.created_at), "ownerMustSignIn": not key_valid,
    }


def link_for(request: Request, invite: Invite) -> str:
    services = request.app.state.services
    base = services.settings.public_base_url or f"{request.url.scheme}://{request.headers.get('host', '')}"
    return f"{base}/i/{services.box.open(invite.token_enc) or ''}"


async def fields(body: dict, creating: bool, hasher) -> dict:
    """Validated model values from a JSON body; ApiError 400 naming the field otherwise."""
    values: dict = {}
    if "label" in body or creating:
        label = body.get("label") or ""
        if not isinstance(label, str) or len(label) > 200:
            raise ApiError(400, "label: at most 200 characters.")
        values["label"] = label.strip()
    if "maxUses" in body:
        values["max_uses"] = _count(body["maxUses"], "maxUses", MAX_COUNT)
    if "expiresInDays" in body and body["expiresInDays"] is not None:
        days = body["expiresInDays"]
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= 3650:
            raise ApiError(400, "expiresInDays: a number of days between 0 and 3650.")
        values["expires_at"] = datetime.now(timezone.utc) + timedelta(days=days)
    elif "expiresAt" in body:
        values["expires_at"] = _moment(body["expiresAt"])
    if "password" in body:
        password = body["password"]
        if password is not None and (not isinstance(password, str) or not 4 <= len(password) <= 200):
            raise ApiError(400, "password: 4 to 200 characters, or null for none.")
        values["password_hash"] = await hasher.run(hash_password, password, refuse=False) if password else None
    for name, column in LIMITS.items():
        if name in body:
            values[column] = _count(body[name], name, MAX_COUNT if name == "maxFiles" else MAX_BYTES)
    if "mediaKind" in body:
        if body["mediaKind"] not in ("all", "photos", "videos"):
            raise ApiError(400, "mediaKind: one of all, photos, videos.")
        values["media_kind"] = body["mediaKind"]
    if "guestFields" in body:
        if body["guestFields"] not in MODES:
            raise ApiError(400, "guestFields: one of optional, required, hidden.")
        values["guest_fields"] = body["guestFields"]
    if "disabled" in body and not creating:
        if not isinstance(body["disabled"], bool):
            raise ApiError(400, "disabled: true or false.")
        values["disabled"] = body["disabled"]
    return values


async def list_or_create(request: Request) -> Response:
    services = request.app.state.services
    if request.method == "GET":
        _, account = await require_admin(request)
        invites = await services.store.invites_of(account.user_id)
        return JSONResponse([invite_json(i, link_for(request, i), account.key_valid) for i in invites],
                            headers=NO_STORE)
    _, account = await require_admin(request, write=True)
    body = await json_body(request)
    values = await fields(body, creating=True, hasher=services.hasher)
    album = body.get("album")
    if album is not None:
        if not isinstance(album, dict) or not (album.get("id") or album.get("name")) or \
                not all(isinstance(album.get(k) or "", str) and len(album.get(k) or "") <= 255 for k in ("id", "name")):
            raise ApiError(400, 'album: null, {"id": ...} or {"name": ...}.')
        if album.get("id"):
            known = {a["id"]: a for a in await immich_call(services, account, services.immich.writable_albums,
                                                                account.user_id)}
            if album["id"] not in known:
                raise ApiError(400, "album: no such album in your library, or one you may only view.")
            values.update(album_id=album["id"], album_name=known[album["id"]].get("albumName", ""))
        else:
            name = str(album["name"]).strip()[:255]
            values.update(album_id=await immich_call(services, account, services.immich.create_album, name),
                          album_name=name)
    token = new_token()
    invite = Invite(id=uuid.uuid4().hex, token_hash=token_hash(token), token_enc=services.box.seal(token),
                    owner_id=account.user_id, **values)
    await services.store.add(invite)
    return JSONResponse(invite_json(invite, link_for(request, invite), account.key_valid), status_code=201,
                        headers=NO_STORE)


async def own_invite(request: Request, write: bool = False):
    _, account = await require_admin(request, write=write)
    invite = await request.app.state.services.store.get_invite(request.path_params["id"])
    if invite is None or invite.owner_id != account.user_id or invite.deleted_at is not None:
        raise ApiError(404, "No such invite.")
    return invite, account


async def one(request: Request) -> Response:
    services = request.app.state.services
    if request.method == "GET":
        invite, account = await own_invite(request)
        return JSONResponse(invite_json(invite, link_for(request, invite), account.key_valid), headers=NO_STORE)
    invite, account = await own_invite(request, write=True)
    if request.method == "PATCH":
        values = await fields(await json_body(request), creating=False, hasher=services.hasher)
        if values:
            invite = await services.store.update_invite(invite.id, **values)
        return JSONResponse(invite_json(invite, link_for(request, invite), account.key_valid), headers=NO_STORE)
    await services.store.update_invite(invite.id, deleted_at=datetime.now(timezone.utc))
    for upload in await services.store.uploads_of_invite(invite.id):
        if upload.state == UploadState.RECEIVING or upload.state in UploadState.PENDING_DELIVERY:
            await services.pipeline.drop(upload.id, "The link was deleted by its owner; this file was not sent.")
    return Response(status_code=204)


async def uploads(request: Request) -> Response:
    invite, _ = await own_invite(request)
    rows = await request.app.state.services.store.uploads_of_invite(invite.id)
    return JSONResponse([{"id": u.id, "filename": u.filename, "size": u.size, "state": u.state,
                          "message": u.message, "guestName": u.guest_name, "guestMessage": u.guest_message,
                          "createdAt": _iso(u.created_at)} for u in rows],
                        headers={"Cache-Control": "no-store"})


async def qr(request: Request) -> Response:
    invite, _ = await own_invite(request)
    link = link_for(request, invite)
    if request.path_params["kind"] == "png":
        data = await asyncio.to_thread(_qr_png, link)
        return Response(data, media_type="image/png", headers={
            "Content-Disposition": f'attachment; filename="invite-{invite.id[:8]}.png"', **NO_STORE})
    return Response(await asyncio.to_thread(_qr_svg, link), media_type="image/svg+xml", headers=NO_STORE)


def _qr_svg(text: str) -> bytes:
    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathFillImage, border=2).save(out)
    return out.getvalue()


def _qr_png(text: str) -> bytes:
    import qrcode
    from qrcode.image.pure import PyPNGImage

    out = io.BytesIO()
    qrcode.make(text, image_factory=PyPNGImage, box_size=16, border=4).save(out)
    return out.getvalue()


def _count(value, name: str, most: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ApiError(400, f"{name}: a whole number from 1 to {most}, or null for no limit.")
    return value


def _moment(value) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise ApiError(400, "expiresAt: an ISO-8601 date and time, or null for never.")
    if moment.tzinfo is None:
        raise ApiError(400, "expiresAt: include a timezone (Z or ±hh:mm).")
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:
        moment = datetime.min.replace(tzinfo=timezone.utc)
    if not 2000 <= moment.year <= 9999 or moment.year == 9999 and moment.month == 12:
        raise ApiError(400, "expiresAt: a date between the years 2000 and 9999.")
    return moment


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


routes = [
    Route("/api/invites", list_or_create, methods=["GET", "POST"]),
    Route("/api/invites/{id:str}", one, methods=["GET", "PATCH", "DELETE"]),
    Route("/api/invites/{id:str}/uploads", uploads),
    Route("/api/invites/{id:str}/qr.{kind:str}", qr),
]
