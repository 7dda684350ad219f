"""A fake Immich v3 server (ASGI) for the endpoints Immich Drop calls, behaving as API_FACTS.md says.

- API-key auth with permissions: no key → 401 "Authentication required", unknown key → 401
  "Invalid API key", missing permission → 403 "Missing required permission: X" (`all` grants all).
- `POST /assets`: the extension check uses the `filename` field only if it came *before*
  `assetData` (else the part's file name); dates need `Z` or an offset (400 "Validation failed");
  `x-immich-checksum` (hex or base64) short-circuits to 200 duplicate without adding to an album;
  otherwise duplicates are per owner, by the SHA-1 of the bytes actually received, written to a
  temporary file and hashed while they arrive, as Immich's multer storage does (`fake_multer`).
- Bulk check (with `isTrashed`), albums (find by exact name, owned or shared, create, add assets),
  API keys (create, list, delete). As the real Immich v3.1.0 answers (tests/test_real_immich.py):
  ids in paths and bodies must be UUIDs (400 "Validation failed"); adding an asset that is deleted
  or not the caller's gives `no_permission` (not `not_found`); adding to a deleted album is a 400
  "Album not found" and to an album shared as a viewer a 400 "Not found or no albumAsset.create
  access"; a trashed asset is still a duplicate and can still be added to an album.
- Records every upload it received (`uploads`) and can be told to fail (`fail_status`), slow down
  (`delay`), hold uploads (`upload_gate`), refuse them (`upload_refusal`, e.g. a full quota) or
  forget a key (`revoke`). "Going away" is stopping the server that serves it.
"""

from __future__ import annotations

import asyncio
import base64
import html
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fake_multer import read_asset_form

# Immich v3.1.0's own list (the peer's GET /server/media-types)
IMAGE_TYPES = [".avif", ".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp", ".3fr", ".ari", ".arw", ".cap", ".cin",
               ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".fff", ".iiq", ".k25", ".kdc", ".mrw", ".nef", ".nrw",
               ".orf", ".ori", ".pef", ".psd", ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f", ".heic",
               ".heif", ".hif", ".insp", ".jp2", ".jpe", ".jxl", ".mpo", ".svg", ".tif", ".tiff"]
VIDEO_TYPES = [".3gp", ".3gpp", ".avi", ".flv", ".insv", ".m2t", ".m2ts", ".m4v", ".mkv", ".mov", ".mp4", ".mpe",
               ".mpeg", ".mpg", ".mts", ".mxf", ".ts", ".vob", ".webm", ".wmv"]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
INVALID = {"message": "Validation failed", "errors": [{"code": "invalid_format", "format": "uuid"}]}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass
class Received:
    owner: str
    asset_id: str
    filename: str
    field_order: list[str]
    file_created_at: str
    file_modified_at: str
    sha1: str
    size: int
    checksum_header: str | None
    visibility: str = "timeline"


@dataclass
class Album:
    id: str
    owner: str
    name: str
    assets: list[str] = field(default_factory=list)
    members: dict[str, str] = field(default_factory=dict)  # user id -> "editor" | "viewer"
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


class FakeImmich:
    def __init__(self):
        self.keys: dict[str, tuple[str, set[str]]] = {}  # api key -> (user id, permissions)
        self.pings = 0  # GET /server/ping answered
        self.descriptions: dict[str, str] = {}  # asset id -> dc:description of the XMP sidecar sent with it
        self.users: dict[str, dict] = {}  # user id -> {"email", "password", "name"}
        self.sessions: dict[str, str] = {}  # access token -> user id
        self.assets: dict[str, dict[str, str]] = {}  # owner -> sha1 hex -> asset id
        self.trashed: set[str] = set()  # asset ids in their owner's trash
        self.key_ids: dict[str, str] = {}  # api key id -> secret
        self.albums: dict[str, Album] = {}
        self.uploads: list[Received] = []  # every 201 (new asset)
        self.requests: list[tuple[str, str]] = []
        self.fail_status: int | None = None
        self.answer_gate: asyncio.Event | None = None  # POST /assets: stored, then wait for this to answer
        self.delay = 0.0
        self.upload_gate: asyncio.Event | None = None  # when set, uploads wait for it
        self.upload_refusal: str | None = None  # when set, uploads answer 400 with this message
        self.waiting_at_gate = 0  # uploads currently held by upload_gate
        self.upload_bytes = 0  # body bytes read by POST /assets so far, finished or not
        self.upload_aborts = 0  # POST /assets whose client went away before the body ended
        self.upload_bodies = 0  # POST /assets whose whole body arrived, new asset or duplicate alike
        self.app = Starlette(routes=[
            Route("/api/server/ping", self.ping),
            Route("/api/server/version", self.version),
            Route("/api/server/media-types", self.media_types),
            Route("/api/auth/login", self.login, methods=["POST"]),
            Route("/api/auth/logout", self.logout, methods=["POST"]),
            Route("/api/users/me", self.me, methods=["GET"]),
            Route("/api/api-keys", self.create_key, methods=["POST"]),
            Route("/api/api-keys", self.list_keys, methods=["GET"]),
            Route("/api/api-keys/{id}", self.delete_key, methods=["DELETE"]),
            Route("/api/assets", self.upload, methods=["POST"]),
            Route("/api/assets/bulk-upload-check", self.bulk_check, methods=["POST"]),
            Route("/api/albums", self.list_albums, methods=["GET"]),
            Route("/api/albums", self.create_album, methods=["POST"]),
            Route("/api/albums/{id}", self.get_album, methods=["GET"]),
            Route("/api/albums/{id}/assets", self.add_assets, methods=["PUT"]),
        ])

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["path"]))
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.fail_status and scope["path"] != "/api/server/media-types":
                response = JSONResponse({"message": "fake failure"}, status_code=self.fail_status)
                return await response(scope, receive, send)
            if scope["path"] == "/api/assets" and scope["method"] == "POST":
                receive = self._counted(receive)
        await self.app(scope, receive, send)

    def _counted(self, receive):
        async def counted():
            message = await receive()
            if message["type"] == "http.request":
                self.upload_bytes += len(message.get("body", b""))
            return message

        return counted

    # --- test controls -----------------------------------------------------------------
    def add_user(self, permissions=("asset.upload", "album.read", "album.create", "albumAsset.create")) -> str:
        key = "key-" + uuid.uuid4().hex
        self.keys[key] = ("user-" + uuid.uuid4().hex[:8], set(permissions))
        return key

    def add_account(self, email: str, password: str, name: str = "") -> str:
        """A user who can sign in with a password; returns the user id."""
        user_id = "user-" + uuid.uuid4().hex[:8]
        self.users[user_id] = {"email": email, "password": password, "name": name or email.split("@")[0]}
        return user_id

    def key_for(self, user_id: str, permissions=("all",)) -> str:
        key = "key-" + uuid.uuid4().hex
        self.keys[key] = (user_id, set(permissions))
        return key

    def owner_of(self, key: str) -> str:
        return self.keys[key][0]

    def revoke(self, key: str) -> None:
        """Deleted in Immich (its only way to revoke a key)."""
        self.keys.pop(key, None)
        for key_id, secret in list(self.key_ids.items()):
            if secret == key:
                del self.key_ids[key_id]

    def delete_album(self, album_id: str) -> None:
        del self.albums[album_id]

    def share_album(self, album_id: str, user_id: str, role: str) -> None:
        self.albums[album_id].members[user_id] = role

    def trash(self, asset_id: str) -> None:
        self.trashed.add(asset_id)

    def delete_asset(self, asset_id: str) -> None:
        """Gone for good (trash emptied): no longer a duplicate, no longer in any album."""
        for owned in self.assets.values():
            for sha1, known in list(owned.items()):
                if known == asset_id:
                    del owned[sha1]
        for album in self.albums.values():
            if asset_id in album.assets:
                album.assets.remove(asset_id)
        self.trashed.discard(asset_id)

    def albums_named(self, owner: str, name: str) -> list[Album]:
        return [a for a in self.albums.values() if a.owner == owner and a.name == name]

    # --- auth ------------------------------------------------------------------------------
    def _auth(self, request: Request, permission: str) -> str | JSONResponse:
        # A session (bearer token or the cookie sign-in sets) wins over an API key, as in Immich.
        bearer = request.headers.get("authorization", "")
        token = bearer[7:] if bearer.startswith("Bearer ") else request.cookies.get("immich_access_token")
        if token:  # a session: not checked against permissions
            user = self.sessions.get(token)
            return user or JSONResponse({"message": "Invalid user token"}, status_code=401)
        key = request.headers.get("x-api-key")
        if not key:
            return JSONResponse({"message": "Authentication required"}, status_code=401)
        if key not in self.keys:
            return JSONResponse({"message": "Invalid API key"}, status_code=401)
        owner, perms = self.keys[key]
        if "all" not in perms and permission not in perms:
            return JSONResponse({"message": f"Missing required permission: {permission}"}, status_code=403)
        return owner

    # --- users, sessions, keys --------------------------------------------------------------
    async def login(self, request: Request):
        body = await request.json()
        for user_id, user in self.users.items():
            if user["email"] == body.get("email") and user["password"] == body.get("password"):
                token = uuid.uuid4().hex + uuid.uuid4().hex
                self.sessions[token] = user_id
                response = JSONResponse({"accessToken": token, "userId": user_id, "userEmail": user["email"],
                                         "name": user["name"], "isAdmin": False, "profileImagePath": "",
                                         "shouldChangePassword": False, "isOnboarded": True}, status_code=201)
                response.set_cookie("immich_access_token", token, httponly=True, samesite="lax", max_age=400 * 86400)
                response.set_cookie("immich_auth_type", "password", httponly=True)
                response.set_cookie("immich_is_authenticated", "true")
                return response
        return JSONResponse({"message": "Incorrect email or password"}, status_code=401)

    async def logout(self, request: Request):
        owner = self._auth(request, "session.read")
        if isinstance(owner, JSONResponse):
            return owner
        bearer = request.headers.get("authorization", "")
        self.sessions.pop(bearer[7:], None)
        return JSONResponse({"successful": True, "redirectUri": "/auth/login?autoLaunch=0"})

    async def me(self, request: Request):
        owner = self._auth(request, "user.read")
        if isinstance(owner, JSONResponse):
            return owner
        user = self.users.get(owner, {"email": f"{owner}@example.org", "name": owner})
        return JSONResponse({"id": owner, "email": user["email"], "name": user["name"], "isAdmin": False})

    async def create_key(self, request: Request):
        owner = self._auth(request, "apiKey.create")
        if isinstance(owner, JSONResponse):
            return owner
        body = await request.json()
        wanted = body.get("permissions") or []
        if not wanted:
            return JSONResponse({"message": "Validation failed"}, status_code=400)
        key = request.headers.get("x-api-key")
        if key and "all" not in self.keys[key][1] and not set(wanted) <= self.keys[key][1]:
            return JSONResponse({"message": "Cannot grant permissions you do not have"}, status_code=400)
        secret = "key-" + uuid.uuid4().hex
        self.keys[secret] = (owner, set(wanted))
        key_id = str(uuid.uuid4())
        self.key_ids[key_id] = secret
        now = datetime.now(timezone.utc).isoformat()
        return JSONResponse({"secret": secret, "apiKey": {"id": key_id, "name": body.get("name", ""),
                                                          "createdAt": now, "updatedAt": now, "permissions": wanted}},
                            status_code=201)

    async def list_keys(self, request: Request):
        owner = self._auth(request, "apiKey.read")
        if isinstance(owner, JSONResponse):
            return owner
        return JSONResponse([{"id": key_id, "permissions": sorted(self.keys[secret][1])}
                             for key_id, secret in self.key_ids.items() if self.keys.get(secret, ("",))[0] == owner])

    async def delete_key(self, request: Request):
        owner = self._auth(request, "apiKey.delete")
        if isinstance(owner, JSONResponse):
            return owner
        key_id = request.path_params["id"]
        if not UUID.match(key_id):
            return JSONResponse(INVALID, status_code=400)
        secret = self.key_ids.get(key_id)
        if secret is None or self.keys.get(secret, ("",))[0] != owner:
            return JSONResponse({"message": "API Key not found"}, status_code=400)
        del self.key_ids[key_id]
        self.keys.pop(secret, None)
        return Response(status_code=204)

    def owned_keys(self, owner: str) -> list[str]:
        return [key_id for key_id, secret in self.key_ids.items() if self.keys.get(secret, ("",))[0] == owner]

    # --- server ----------------------------------------------------------------------------
    async def ping(self, request):
        self.pings += 1
        await asyncio.sleep(0)  # an answer that takes a turn of the loop, as a network one does
        return JSONResponse({"res": "pong"})

    async def version(self, request):
        return JSONResponse({"major": 3, "minor": 1, "patch": 0, "prerelease": None})

    async def media_types(self, request):
        return JSONResponse({"image": IMAGE_TYPES, "video": VIDEO_TYPES, "sidecar": [".xmp"]})

    # --- assets ----------------------------------------------------------------------------
    async def upload(self, request: Request):
        owner = self._auth(request, "asset.upload")
        if isinstance(owner, JSONResponse):
            return owner
        header = request.headers.get("x-immich-checksum")
        if header:
            raw = base64.b64decode(header) if len(header) == 28 else bytes.fromhex(header)
            existing = self.assets.get(owner, {}).get(raw.hex())
            if existing:  # answered before the body is read, and not added to any album
                return JSONResponse({"status": "duplicate", "id": existing}, status_code=200)
        if self.upload_gate is not None:
            self.waiting_at_gate += 1
            try:
                await self.upload_gate.wait()
            finally:
                self.waiting_at_gate -= 1
            # Immich reads the body as it streams and notices a client gone meanwhile. A body held
            # here lies in uvicorn's buffer: let a close that came with the gate's release be
            # handled first (it is queued right behind this task), or the gone client's buffered
            # body would be read as a whole upload (CI, once, under load).
            for _ in range(3):
                await asyncio.sleep(0)
        if self.upload_refusal:
            return JSONResponse({"message": self.upload_refusal}, status_code=400)
        try:
            form = await read_asset_form(request)  # written and hashed as it arrives, as Immich does
        except ClientDisconnect:  # Immich drops a partial upload and keeps nothing of it
            self.upload_aborts += 1
            return Response(status_code=400)
        except ValueError:  # not multipart: multer passes it on without a file
            return JSONResponse({"message": "File is required"}, status_code=400)
        order = form.order
        if form.sidecar is not None and not (form.sidecar_name or "").lower().endswith(".xmp"):
            # multer checks a sidecar's extension against `filename` once that field has come
            return JSONResponse({"message": f"Unsupported file type {form.sidecar_name}"}, status_code=400)
        if form.file_field != "assetData":
            return JSONResponse({"message": "File is required"}, status_code=400)
        before = order[: order.index("assetData")]
        name = form.fields["filename"] if "filename" in before else (form.filename or "blob")
        ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name else name
        if ext not in IMAGE_TYPES + VIDEO_TYPES:
            return JSONResponse({"message": f"Unsupported file type {ext}"}, status_code=400)
        created, modified = form.fields.get("fileCreatedAt"), form.fields.get("fileModifiedAt")
        if not (isinstance(created, str) and DATE.match(created) and isinstance(modified, str) and DATE.match(modified)):
            return JSONResponse({"message": "Validation failed", "errors": [{"path": ["fileCreatedAt"]}]}, status_code=400)
        visibility = form.fields.get("visibility", "timeline")
        if visibility not in ("archive", "timeline", "hidden", "locked"):  # as Immich v3.1.0 answers
            return JSONResponse({"message": "Validation failed", "errors": [{"path": ["visibility"]}]}, status_code=400)
        size, sha1 = form.size, form.sha1
        self.upload_bodies += 1
        if not size:
            return JSONResponse({"message": "File is empty"}, status_code=400)
        owned = self.assets.setdefault(owner, {})
        if sha1 in owned:
            return JSONResponse({"status": "duplicate", "id": owned[sha1]}, status_code=200)
        asset_id = str(uuid.uuid4())
        owned[sha1] = asset_id
        self.uploads.append(Received(owner, asset_id, name, order, created, modified, sha1, size, header, visibility))
        if self.answer_gate is not None:  # stored, the answer held back (a client timing out meanwhile)
            await self.answer_gate.wait()
        if form.sidecar is not None:
            found = re.search(rb"<rdf:li[^>]*>(.*?)</rdf:li>", form.sidecar, re.S)
            if found:
                self.descriptions[asset_id] = html.unescape(found.group(1).decode())
        return JSONResponse({"id": asset_id, "status": "created"}, status_code=201)

    async def bulk_check(self, request: Request):
        owner = self._auth(request, "asset.upload")
        if isinstance(owner, JSONResponse):
            return owner
        body = await request.json()
        if not body.get("assets"):  # the real v3.1.0 fails on an empty list
            return JSONResponse({"message": "Failed to check bulk upload"}, status_code=500)
        results = []
        for item in body.get("assets", []):
            checksum = item["checksum"]
            raw = base64.b64decode(checksum) if len(checksum) == 28 else bytes.fromhex(checksum)
            existing = self.assets.get(owner, {}).get(raw.hex())
            if existing:
                results.append({"id": item["id"], "action": "reject", "reason": "duplicate",
                                "assetId": existing, "isTrashed": existing in self.trashed})
            else:
                results.append({"id": item["id"], "action": "accept"})
        return JSONResponse({"results": results})

    # --- albums ----------------------------------------------------------------------------
    def _album_dto(self, album: Album) -> dict:
        users = [{"user": self._user_dto(album.owner), "role": "owner"}] + \
            [{"user": self._user_dto(user), "role": role} for user, role in album.members.items()]
        return {"id": album.id, "albumName": album.name, "description": "", "createdAt": album.created_at,
                "updatedAt": album.created_at, "albumThumbnailAssetId": None, "shared": bool(album.members),
                "albumUsers": users, "hasSharedLink": False, "assetCount": len(album.assets),
                "isActivityEnabled": True, "order": "desc"}

    def _user_dto(self, user_id: str) -> dict:
        user = self.users.get(user_id, {"email": f"{user_id}@example.org", "name": user_id})
        return {"id": user_id, "email": user["email"], "name": user["name"], "profileImagePath": "",
                "avatarColor": "primary", "profileChangedAt": "2026-01-01T00:00:00.000Z"}

    async def list_albums(self, request: Request):
        owner = self._auth(request, "album.read")
        if isinstance(owner, JSONResponse):
            return owner
        query = request.query_params
        found = [a for a in self.albums.values()
                 if (a.owner == owner and query.get("isShared") != "true")
                 or (owner in a.members and query.get("isOwned") != "true")]
        found = [a for a in found if "name" not in query or a.name == query["name"]]
        return JSONResponse([self._album_dto(a) for a in found])

    async def get_album(self, request: Request):
        owner = self._auth(request, "album.read")
        if isinstance(owner, JSONResponse):
            return owner
        if not UUID.match(request.path_params["id"]):
            return JSONResponse(INVALID, status_code=400)
        album = self.albums.get(request.path_params["id"])
        if album is None or (album.owner != owner and owner not in album.members):
            return JSONResponse({"message": "Not found or no album.read access"}, status_code=400)
        return JSONResponse(self._album_dto(album))

    async def create_album(self, request: Request):
        owner = self._auth(request, "album.create")
        if isinstance(owner, JSONResponse):
            return owner
        body = await request.json()
        if not isinstance(body.get("albumName"), str):
            return JSONResponse({"message": "Validation failed"}, status_code=400)
        album = Album(str(uuid.uuid4()), owner, body["albumName"])
        self.albums[album.id] = album
        return JSONResponse(self._album_dto(album), status_code=201)

    async def add_assets(self, request: Request):
        owner = self._auth(request, "albumAsset.create")
        if isinstance(owner, JSONResponse):
            return owner
        ids = (await request.json()).get("ids", [])
        if not UUID.match(request.path_params["id"]) or not all(isinstance(i, str) and UUID.match(i) for i in ids):
            return JSONResponse(INVALID, status_code=400)
        album = self.albums.get(request.path_params["id"])
        if album is None:
            return JSONResponse({"message": "Album not found"}, status_code=400)
        if album.owner != owner and album.members.get(owner) != "editor":
            return JSONResponse({"message": "Not found or no albumAsset.create access"}, status_code=400)
        owned = set(self.assets.get(owner, {}).values())
        results = []
        for asset_id in ids:
            if asset_id not in owned:  # deleted, or never this user's: Immich checks access first
                results.append({"id": asset_id, "success": False, "error": "no_permission"})
            elif asset_id in album.assets:
                results.append({"id": asset_id, "success": False, "error": "duplicate"})
            else:
                album.assets.append(asset_id)
                results.append({"id": asset_id, "success": True})
        return JSONResponse(results)
