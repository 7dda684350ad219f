"""The Immich client against the fake Immich through httpx's ASGI transport, plus error mapping."""

import asyncio
import hashlib

import httpx
import pytest

from conftest import MEDIA, sha1_of
from fake_immich import FakeImmich
from immich_drop.immich import AlbumMissing, ImmichClient, ImmichRejected, ImmichUnavailable


@pytest.fixture
def fake():
    return FakeImmich()


def client(app) -> ImmichClient:
    return ImmichClient("http://immich.test/api", transport=httpx.ASGITransport(app=app))


def test_upload_sends_text_fields_first_and_streams_the_file(fake):
    key = fake.add_user()
    path = MEDIA / "exif_offset.jpg"

    async def run():
        c = client(fake)
        first = await c.upload_asset(key, path, path.stat().st_size, filename="exif_offset.jpg",
                                     created_at="2019-05-04T13:14:15.000+02:00", modified_at="2024-01-01T00:00:00.000Z",
                                     checksum=sha1_of(path))
        again = await c.upload_asset(key, path, path.stat().st_size, filename="exif_offset.jpg",
                                     created_at="2019-05-04T13:14:15.000+02:00", modified_at="2024-01-01T00:00:00.000Z")
        await c.aclose()
        return first, again

    (asset_id, dup), (same_id, dup_again) = asyncio.run(run())
    assert not dup and dup_again and same_id == asset_id
    [received] = fake.uploads
    assert received.field_order == ["filename", "fileCreatedAt", "fileModifiedAt", "isFavorite", "assetData"]
    assert received.sha1 == sha1_of(path) and received.checksum_header == sha1_of(path)


def test_fake_refuses_filename_after_the_file_like_immich(fake):
    """The rule the client's field order exists for: a `filename` after `assetData` does not count."""
    key = fake.add_user()

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://i/api") as http:
            return await http.post("/assets", headers={"x-api-key": key},
                                   files={"assetData": ("blob", b"data", "application/octet-stream")},
                                   data={"filename": "a.jpg", "fileCreatedAt": "2024-01-01T00:00:00Z",
                                         "fileModifiedAt": "2024-01-01T00:00:00Z"})

    # httpx puts data fields first; rebuild the body with the file first to prove the rule.
    response = asyncio.run(_file_first(fake, key))
    assert response.status_code == 400 and response.json()["message"] == "Unsupported file type blob"
    assert asyncio.run(run()).status_code == 201


async def _file_first(fake, key):
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"assetData\"; filename=\"blob\"\r\n\r\ndata\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"filename\"\r\n\r\na.jpg\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"fileCreatedAt\"\r\n\r\n2024-01-01T00:00:00Z\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"fileModifiedAt\"\r\n\r\n2024-01-01T00:00:00Z\r\n"
            f"--{boundary}--\r\n").encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://i/api") as http:
        return await http.post("/assets", content=body, headers={
            "x-api-key": key, "content-type": f"multipart/form-data; boundary={boundary}"})


def test_naive_dates_are_refused_by_the_fake(fake):
    key = fake.add_user()
    path = MEDIA / "no_date.jpg"

    async def run():
        c = client(fake)
        try:
            await c.upload_asset(key, path, path.stat().st_size, filename="no_date.jpg",
                                 created_at="2024-01-01T10:00:00", modified_at="2024-01-01T10:00:00")
        finally:
            await c.aclose()

    with pytest.raises(ImmichRejected, match="Validation failed"):
        asyncio.run(run())


def test_errors_are_mapped(fake):
    key = fake.add_user(permissions=("album.read",))

    async def run():
        c = client(fake)
        results = {}
        for name, call in {
            "no permission": c.create_album(key, "x"),
            "bad key": c.find_album("nope", "x"),
            "missing album": c.add_to_album_each(key, "00000000-0000-0000-0000-000000000000", ["a"]),
        }.items():
            try:
                await call
            except Exception as exc:  # noqa: BLE001 - the kind is what is tested
                results[name] = exc
        fake.fail_status = 502
        try:
            await c.ping()
        except Exception as exc:  # noqa: BLE001
            results["5xx"] = exc
        await c.aclose()
        refused = ImmichClient("http://127.0.0.1:9/api")  # nothing listens on the discard port
        try:
            await refused.ping()
        except Exception as exc:  # noqa: BLE001
            results["refused"] = exc
        await refused.aclose()
        return results

    fake.keys[key][1].add("albumAsset.create")
    r = asyncio.run(run())
    assert isinstance(r["no permission"], ImmichRejected) and r["no permission"].status == 403
    assert r["no permission"].message == "Missing required permission: album.create"
    assert r["bad key"].auth_problem and r["bad key"].message == "Invalid API key"
    assert isinstance(r["missing album"], AlbumMissing)
    assert isinstance(r["5xx"], ImmichUnavailable) and isinstance(r["refused"], ImmichUnavailable)


def test_media_types_are_cached(fake):
    async def run():
        c = client(fake)
        first = await c.media_types()
        second = await c.media_types()
        await c.aclose()
        return first, second

    first, second = asyncio.run(run())
    assert ".heic" in first and ".mp4" in first and ".xmp" not in first and first is second
    assert fake.requests.count(("GET", "/api/server/media-types")) == 1


def test_fake_reads_an_upload_as_multer_does_fields_in_order_file_hashed_on_the_way():
    """The fake's reader (tests/fake_multer.py) against a body cut at awkward places: text fields before
    and after the file, a file part larger than one write piece; the SHA-1 is of the bytes received."""
    from starlette.requests import Request

    from fake_multer import PIECE, read_asset_form

    payload = bytes(range(256)) * (PIECE // 128 + 7)  # a little over 2 pieces
    boundary = b"b0und4ry"
    body = b"".join([
        b"--%s\r\nContent-Disposition: form-data; name=\"filename\"\r\n\r\nclip.mp4\r\n" % boundary,
        b"--%s\r\nContent-Disposition: form-data; name=\"assetData\"; filename=\"blob\"\r\n" % boundary,
        b"Content-Type: application/octet-stream\r\n\r\n", payload, b"\r\n",
        b"--%s\r\nContent-Disposition: form-data; name=\"fileCreatedAt\"\r\n\r\n2024-01-01T00:00:00Z\r\n" % boundary,
        b"--%s--\r\n" % boundary])
    pieces = [body[i:i + 65_537] for i in range(0, len(body), 65_537)]

    async def run():
        messages = [{"type": "http.request", "body": p, "more_body": True} for p in pieces]
        messages.append({"type": "http.request", "body": b"", "more_body": False})

        async def receive():
            return messages.pop(0)

        scope = {"type": "http", "method": "POST", "path": "/api/assets", "headers": [
            (b"content-type", b"multipart/form-data; boundary=" + boundary)]}
        return await read_asset_form(Request(scope, receive))

    form = asyncio.run(run())
    assert form.order == ["filename", "assetData", "fileCreatedAt"]
    assert form.fields == {"filename": "clip.mp4", "fileCreatedAt": "2024-01-01T00:00:00Z"}
    assert (form.file_field, form.filename, form.size) == ("assetData", "blob", len(payload))
    assert form.sha1 == hashlib.sha1(payload).hexdigest()


def test_a_description_sidecar_is_xml_whatever_the_guest_wrote():
    from xml.etree import ElementTree

    from immich_drop.immich import xmp_description

    text = "Anna <b>&amp;</b> ]]> \x00\x07 \udcff end\n\tline"
    root = ElementTree.fromstring(xmp_description(text).split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])
    [li] = root.iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li")
    assert li.text == "Anna <b>&amp;</b> ]]>   end\n\tline"  # what XML cannot hold is dropped


@pytest.mark.parametrize("failure, unsent", [
    (httpx.ConnectError("refused"), True), (httpx.ConnectTimeout("slow connect"), True),
    (httpx.PoolTimeout("no connection free"), True), (503, True), (429, True), (502, True),
    (httpx.ReadTimeout("no answer in time"), False), (httpx.RemoteProtocolError("cut"), False), (500, False),
], ids=str)
def test_a_failure_says_whether_the_request_can_have_reached_immich(failure, unsent):
    """`unsent`: the request certainly changed nothing in Immich (the pipeline then takes back its
    "being sent" mark). A timeout waiting for the answer, a cut connection or a 500 may follow a stored file."""
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(failure, Exception):
            raise failure
        return httpx.Response(failure, json={"message": "down"})

    async def run():
        c = ImmichClient("http://immich.test/api", transport=httpx.MockTransport(handler))
        try:
            await c.ping()
        finally:
            await c.aclose()

    with pytest.raises(ImmichUnavailable) as raised:
        asyncio.run(run())
    assert raised.value.unsent is unsent
