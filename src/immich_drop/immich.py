"""The Immich v3 API client: the only module that talks HTTP to Immich (see ../shared/immich/API_FACTS.md).

`ImmichClient(base_url, transport=None)` takes an optional httpx transport so tests can plug in the
fake Immich, and `in_background`, how to run the file reads of an upload (a worker thread of
normal priority: Immich waits for those bytes, see `background`). Without a transport, to a plain
`http://` Immich reached without a proxy, a staged file goes to Immich by `sendfile` (`filesend`)
on one of `senders` threads (0: never); over TLS, through a proxy, or while it still arrives, it
goes through httpx. Every call that needs a user names the API key to use, because uploads land in
the library of whoever owns the key (the server key for the public page, an admin's key for invites).

Errors come out as two kinds: `ImmichUnavailable` (connection refused, timeouts, 5xx, 429: try
again later, keep the file) and `ImmichRejected` (a 4xx answer with Immich's own message: final).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.request
import uuid
from http.cookiejar import CookieJar, DefaultCookiePolicy
from xml.sax.saxutils import escape as xml_escape
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterable

import httpx

from .filesend import FileSender

READ_PIECE = 1024 * 1024  # what one thread hop reads from disk while streaming to Immich
FIXED_ISO_LENGTH = len("2018-07-01T10:20:30.000+00:00")  # `media.fixed_iso`, for dates sent after the file


class ImmichError(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class ImmichUnavailable(ImmichError):
    """Immich could not be reached or failed on its side; the same call may work later.

    `unsent` is true when the request certainly changed nothing in Immich: no connection was made, or
    the answer was one that comes before any work (429, or 502/503/504 from a proxy or an overloaded
    server). A read timeout or a connection lost mid-request is not: the upload may have landed."""

    NOTHING_DONE = frozenset({429, 502, 503, 504})

    def __init__(self, message: str, status: int | None = None, *, unsent: bool = False):
        super().__init__(message, status)
        self.unsent = unsent or status in self.NOTHING_DONE


class ImmichRejected(ImmichError):
    """Immich answered 4xx: the request itself is refused (bad type, quota, permissions)."""

    @property
    def auth_problem(self) -> bool:
        return self.status in (401, 403)


class AlbumMissing(ImmichRejected):
    """The album id we hold no longer exists (or is no longer ours)."""


class AssetMissing(ImmichRejected):
    """An asset id we hold no longer exists in Immich (deleted since we learnt it)."""


class AlbumNotWritable(ImmichRejected):
    """The album exists, but this user may not add to it (shared with them as a viewer)."""


class ImmichClient:
    def __init__(self, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 60.0, media_types_ttl: float = 3600.0,
                 in_background: Callable[..., Awaitable] = asyncio.to_thread, senders: int = 4):
        self.base_url = base_url.rstrip("/")
        self.in_background = in_background
        self._sender = (FileSender(senders) if senders and transport is None and _plain_and_direct(self.base_url)
                        else None)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Accept": "application/json", "User-Agent": "immich-drop"},
            # No cookie is ever kept: Immich's sign-in sets `immich_access_token`, and Immich prefers a
            # session cookie to the `x-api-key` header, so a kept cookie would make every later call,
            # for whichever user's key, act as the last user who signed in (seen on the real peer).
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )
        self._media_types: frozenset[str] | None = None
        self._media_types_at = 0.0
        self._media_types_ttl = media_types_ttl
        self._album_locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def aclose(self) -> None:
        try:
            await self._http.aclose()
        finally:
            if self._sender is not None:
                self._sender.close()

    # --- plumbing ---------------------------------------------------------------
    async def _call(self, method: str, path: str, *, api_key: str | None = None, token: str | None = None,
                    file: _MultipartFile | None = None, **kwargs) -> httpx.Response:
        """One request; `file`, a multipart body whose file part is read from disk, goes by `sendfile`
        (the other `kwargs` then hold no content)."""
        headers = dict(kwargs.pop("headers", None) or {})
        if api_key:
            headers["x-api-key"] = api_key
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            request = self._http.build_request(method, path, headers=headers, **kwargs)
            if file is not None:
                response = await self._sender.send(request, file.head, file.path, file.size, file.tail)
            else:
                response = await self._http.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # nothing went out
            raise ImmichUnavailable(f"Immich is unreachable ({type(exc).__name__})", unsent=True) from None
        except httpx.TimeoutException:
            raise ImmichUnavailable("Immich did not answer in time") from None
        except httpx.TransportError as exc:
            raise ImmichUnavailable(f"Immich is unreachable ({type(exc).__name__})") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ImmichUnavailable(f"Immich answered {response.status_code}", response.status_code)
        if response.status_code >= 400:
            raise ImmichRejected(_message(response), response.status_code)
        return response

    # --- server -----------------------------------------------------------------
    async def ping(self) -> None:
        await self._call("GET", "/server/ping")

    async def media_types(self) -> frozenset[str]:
        """Lower-case file extensions (".jpg") Immich accepts for images and videos, cached."""
        if self._media_types is None or time.monotonic() - self._media_types_at > self._media_types_ttl:
            body = (await self._call("GET", "/server/media-types")).json()
            self._media_types = frozenset(e.lower() for key in ("image", "video") for e in body.get(key, []))
            self._media_types_at = time.monotonic()
        return self._media_types

    # --- users and keys ------------------------------------------------------------
    async def login(self, email: str, password: str) -> dict:
        """`POST /auth/login`: the Immich session (`accessToken`, `userId`, `userEmail`, `name`)."""
        return (await self._call("POST", "/auth/login", json={"email": email, "password": password})).json()

    async def logout(self, token: str) -> None:
        await self._call("POST", "/auth/logout", token=token)

    async def me(self, *, token: str | None = None, api_key: str | None = None) -> dict:
        return (await self._call("GET", "/users/me", token=token, api_key=api_key)).json()

    async def create_api_key(self, name: str, permissions: list[str], *, token: str | None = None,
                             api_key: str | None = None) -> tuple[str, str]:
        """Mint a key for the signed-in user; returns (secret, key id). The secret is shown only once."""
        body = (await self._call("POST", "/api-keys", token=token, api_key=api_key,
                                 json={"name": name, "permissions": permissions})).json()
        return body["secret"], body["apiKey"]["id"]

    async def list_albums(self, api_key: str) -> list[dict]:
        return (await self._call("GET", "/albums", api_key=api_key)).json()

    async def writable_albums(self, api_key: str, user_id: str) -> list[dict]:
        """The albums `user_id` may add assets to: owned, or shared with them as an editor. Immich
        lists the albums shared with a user as a viewer too, and refuses additions to those."""
        return [album for album in await self.list_albums(api_key)
                if any(member.get("user", {}).get("id") == user_id and member.get("role") in ("owner", "editor")
                       for member in album.get("albumUsers") or ())]

    async def album_exists(self, api_key: str, album_id: str) -> bool:
        try:
            await self._call("GET", f"/albums/{album_id}", api_key=api_key)
        except ImmichRejected as exc:
            if exc.auth_problem:
                raise
            return False  # 400 "Not found or no album.read access"
        return True

    async def key_works(self, api_key: str) -> bool:
        """Does Immich still accept this key? (An album search by a name nobody uses: cheap, and
        within the permissions minted keys hold.) Raises ImmichUnavailable when Immich cannot tell."""
        try:
            await self._call("GET", "/albums", api_key=api_key, params={"name": f"immich-drop-{uuid.uuid4().hex}"})
        except ImmichRejected as exc:
            if exc.auth_problem:
                return False
            raise
        return True

    async def delete_api_key(self, key_id: str, *, token: str | None = None, api_key: str | None = None) -> None:
        """Remove a key from the user's Immich account; one already gone counts as removed."""
        try:
            await self._call("DELETE", f"/api-keys/{key_id}", token=token, api_key=api_key)
        except ImmichRejected as exc:
            if exc.status not in (400, 404):
                raise

    # --- assets -----------------------------------------------------------------
    async def bulk_upload_check(self, api_key: str, checksums: Iterable[tuple[str, str]]) -> dict[str, dict]:
        """`(client id, sha1 hex)` pairs in; Immich's result per client id out."""
        payload = {"assets": [{"id": cid, "checksum": sha} for cid, sha in checksums]}
        body = (await self._call("POST", "/assets/bulk-upload-check", api_key=api_key, json=payload)).json()
        return {item["id"]: item for item in body.get("results", [])}

    async def upload_asset(self, api_key: str, path: Path, size: int, *, filename: str, created_at: str | None,
                           modified_at: str | None, checksum: str | None = None,
                           pieces: AsyncIterator[bytes] | None = None,
                           dates_after: Callable[[], Awaitable[tuple[str, str]]] | None = None,
                           visibility: str | None = None, description: str = "") -> tuple[str, bool]:
        """Stream the file at `path` to `POST /assets`; returns `(asset id, was it a duplicate)`.

        The text fields go before `assetData`: Immich checks the extension of `filename` while the
        file part streams, so a `filename` after it does not count. The file is never held in
        memory: the kernel sends it (`filesend`), or else it streams from disk in 1 MiB reads on a
        worker thread. `pieces`, when given, supplies the file's `size` bytes instead of reading
        `path` (a file still arriving, see `relay`); an exception it raises aborts the request and
        comes out as is.

        `dates_after`, instead of the two dates, is called once the file's bytes are sent and gives
        (fileCreatedAt, fileModifiedAt) in `fixed_iso` form: Immich reads those fields after the body
        (only `filename` must come first), so a file relayed while it arrives can carry the date that
        only its last bytes hold (a video's `moov` box comes last). `visibility` ("archive") keeps the
        asset out of the owner's timeline (it still goes into albums); `asset.upload` covers it.

        `description` travels as an XMP sidecar (`sidecarData`) in the same request, which Immich reads
        into the asset's description: no `asset.update` permission, no second request, and a duplicate
        (discarded by Immich) never overwrites the description of the asset it duplicates. The sidecar
        goes first, before `filename`: Immich checks each file part's extension against `filename`
        once that field has arrived, and a sidecar must be `.xmp` (seen on the real Immich).
        """
        fields = [("filename", filename), ("isFavorite", "false")]
        if visibility:
            fields.append(("visibility", visibility))
        late: list[str] = []
        if dates_after is None:
            fields[1:1] = [("fileCreatedAt", created_at or ""), ("fileModifiedAt", modified_at or "")]
        else:
            late = ["fileCreatedAt", "fileModifiedAt"]
        body = _MultipartFile(fields, "assetData", filename, path, size, self.in_background, late, dates_after,
                              sidecar=xmp_description(description) if description else None)
        headers = {"Content-Type": body.content_type, "Content-Length": str(body.length)}
        if checksum:
            headers["x-immich-checksum"] = checksum
        by_kernel = self._sender is not None and pieces is None and not late
        sending = {"file": body} if by_kernel else {"content": body.stream(pieces)}
        response = await self._call("POST", "/assets", api_key=api_key, headers=headers, **sending)
        data = response.json()
        return data["id"], data.get("status") == "duplicate"

    # --- albums -----------------------------------------------------------------
    async def find_album(self, api_key: str, name: str) -> str | None:
        """The id of an album of that name the key's user owns (never one only shared with them)."""
        albums = (await self._call("GET", "/albums", api_key=api_key, params={"name": name, "isOwned": "true"})).json()
        for album in albums:
            if album.get("albumName") == name:
                return album["id"]
        return None

    async def find_or_create_album(self, api_key: str, name: str) -> str:
        """The id of the album of that name the key's user owns, made if there is none: one album per
        name, whoever asks (a link made with a "new" album, the console's album form, an album made
        again after it was deleted in Immich). Asked one at a time per user and name in this
        process, so two links made at the same moment do not both miss and both make one."""
        lock = self._album_locks.setdefault((hashlib.sha256(api_key.encode()).hexdigest(), name), asyncio.Lock())
        async with lock:
            return await self.find_album(api_key, name) or await self.create_album(api_key, name)

    async def create_album(self, api_key: str, name: str) -> str:
        body = (await self._call("POST", "/albums", api_key=api_key, json={"albumName": name})).json()
        return body["id"]

    async def add_to_album_each(self, api_key: str, album_id: str,
                                asset_ids: list[str]) -> dict[str, ImmichRejected | None]:
        """Add assets to an album; per asset None (added, or already in it) or the error for it:
        `AssetMissing` for an asset Immich does not have. Raises `AlbumMissing` if the album is gone and
        `AlbumNotWritable` if it is there but this user may only view it (Immich answers both with a
        400, so a refusal is followed by a look at the album)."""
        try:
            response = await self._call("PUT", f"/albums/{album_id}/assets", api_key=api_key, json={"ids": asset_ids})
        except ImmichRejected as exc:
            if exc.status in (400, 404) and not exc.auth_problem:
                if await self.album_exists(api_key, album_id):
                    raise AlbumNotWritable(exc.message, exc.status) from None
                raise AlbumMissing(exc.message, exc.status) from None
            raise
        errors: dict[str, ImmichRejected | None] = dict.fromkeys(asset_ids)
        for item in response.json():
            asset_id, error = item.get("id"), item.get("error")
            # Immich v3 answers "no_permission" for an asset deleted since (it checks access first);
            # the assets added here are always the key user's own, so that means it is gone.
            if error in ("not_found", "no_permission"):
                errors[asset_id] = AssetMissing(f"asset {asset_id} is gone from Immich", 400)
            elif not item.get("success") and error != "duplicate":
                errors[asset_id] = ImmichRejected(f"Immich did not add the asset to the album: {error}", 400)
        return errors


def _plain_and_direct(base_url: str) -> bool:
    """Is Immich at `base_url` reached over plain HTTP with no proxy set for plain HTTP at all?
    (With one, httpx decides by NO_PROXY, whose patterns it reads its own way: every request then
    goes through httpx, so an upload takes the same road as every other call.)"""
    if httpx.URL(base_url).scheme != "http":
        return False
    proxies = urllib.request.getproxies_environment()
    return not (proxies.get("http") or proxies.get("all"))


def xmp_description(text: str) -> bytes:
    """An XMP sidecar holding only `dc:description`: the text escaped as XML character data, with the
    characters XML 1.0 cannot hold at all (controls but tab and newline, lone surrogates) dropped."""
    allowed = "".join(ch for ch in text if ch in "\t\n" or (ord(ch) >= 0x20 and not 0xD800 <= ord(ch) <= 0xDFFF
                                                            and ch not in "\ufffe\uffff"))
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description><rdf:Alt>'
            f'<rdf:li xml:lang="x-default">{xml_escape(allowed)}</rdf:li>'
            '</rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("message") if isinstance(body, dict) else None
        if isinstance(message, list):
            message = "; ".join(map(str, message))
        if message:
            return str(message)
    except ValueError:
        pass
    return f"Immich answered {response.status_code}"


class _MultipartFile:
    """A multipart/form-data body with text fields then one file part, streamed from disk."""

    def __init__(self, fields: list[tuple[str, str]], file_field: str, filename: str, path: Path, size: int,
                 in_background: Callable[..., Awaitable], late: list[str] = (),
                 late_values: Callable[[], Awaitable[tuple[str, ...]]] | None = None, sidecar: bytes | None = None):
        self.boundary = f"immich-drop-{uuid.uuid4().hex}"
        self.path, self.size, self.in_background = path, size, in_background
        self.late, self.late_values = list(late), late_values
        head = b""
        if sidecar is not None:
            head += (f'--{self.boundary}\r\nContent-Disposition: form-data; name="sidecarData"; '
                     f'filename="{uuid.uuid4().hex}.xmp"\r\nContent-Type: application/rdf+xml\r\n\r\n').encode() \
                + sidecar + b"\r\n"
        head += b"".join(self._field(name, value) for name, value in fields)
        safe_name = filename.replace("\\", "_").replace('"', "_").replace("\r", " ").replace("\n", " ")
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{safe_name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.head = head
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        # late fields hold FIXED_ISO_LENGTH characters each: the length is known before their values
        late_length = sum(len(self._field(name, "x" * FIXED_ISO_LENGTH)) for name in self.late)
        self.length = len(self.head) + size + late_length + len(self.tail)

    def _field(self, name: str, value: str) -> bytes:
        return (f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                + value.encode() + b"\r\n")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    async def stream(self, pieces: AsyncIterator[bytes] | None = None) -> AsyncIterator[bytes]:
        yield self.head
        async for piece in pieces or self._read():
            yield piece
        if self.late:
            values = await self.late_values()
            assert all(len(v) == FIXED_ISO_LENGTH for v in values), values
            yield b"\r\n" + b"".join(self._field(n, v) for n, v in zip(self.late, values))[:-2]
        yield self.tail

    async def _read(self) -> AsyncIterator[bytes]:
        """The file's `size` bytes, READ_PIECE at a time, one thread hop per read: the first read also
        opens the file and the last one closes it (a photo under 1 MiB costs one hop, not four; bench/).
        A file shorter than `size` raises OSError (the staged copy is damaged)."""
        files: list = []

        def read(n: int, last: bool) -> bytes:
            if not files:
                files.append(open(self.path, "rb"))
            piece = files[0].read(n)
            if last or len(piece) < n:
                files.pop().close()
            return piece

        left = self.size
        try:
            while left > 0:
                n = min(READ_PIECE, left)
                piece = await self.in_background(read, n, n == left)
                if len(piece) < n:
                    raise OSError(5, f"the staged file ended {left - len(piece)} bytes early")
                left -= n
                yield piece
        finally:
            if files:  # stopped half way (the request failed or was cancelled)
                await asyncio.to_thread(files.pop().close)
