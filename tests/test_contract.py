"""The fake Immich and our client speak Immich v3.1.0's own OpenAPI shapes.

Reads ../shared/immich/immich-openapi-specs.json (Immich's file, not copied into this repository);
skips with a reason where it is absent.
"""

import asyncio
import json
import re
import uuid

import httpx
import pytest

from conftest import MEDIA, SHARED
from fake_immich import FakeImmich

SPEC_PATH = SHARED / "immich-openapi-specs.json"
pytestmark = pytest.mark.skipif(not SPEC_PATH.is_file(), reason=f"Immich's OpenAPI spec not found at {SPEC_PATH}")


@pytest.fixture(scope="module")
def spec():
    return json.loads(SPEC_PATH.read_text())


def schema(spec, path, method, status):
    response = spec["paths"][path][method]["responses"][str(status)]
    return resolve(spec, response["content"]["application/json"]["schema"])


def resolve(spec, node):
    if "$ref" in node:
        return resolve(spec, spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]])
    return node


def conforms(spec, node, value, where="$"):
    node = resolve(spec, node)
    if node.get("type") == "array":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            conforms(spec, node["items"], item, f"{where}[{i}]")
    elif "properties" in node:
        assert isinstance(value, dict), where
        missing = set(node.get("required", [])) - set(value)
        extra = set(value) - set(node["properties"])
        assert not missing, f"{where}: missing {missing}"
        assert not extra, f"{where}: not in the spec {extra}"
        for key, item in value.items():
            if item is not None:
                conforms(spec, node["properties"][key], item, f"{where}.{key}")
    elif "enum" in node:
        assert value in node["enum"], f"{where}: {value!r} not in {node['enum']}"


def test_fake_answers_in_immich_shapes(spec):
    fake = FakeImmich()
    key = fake.add_user()
    photo = MEDIA / "exif_offset.jpg"

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://i/api",
                                     headers={"x-api-key": key}) as http:
            calls = [
                ("/server/ping", "get", 200, await http.get("/server/ping")),
                ("/server/media-types", "get", 200, await http.get("/server/media-types")),
                ("/albums", "post", 201, album := await http.post("/albums", json={"albumName": "A"})),
                ("/albums", "get", 200, await http.get("/albums", params={"name": "A"})),
            ]
            form = {"filename": "a.jpg", "fileCreatedAt": "2024-01-01T00:00:00Z", "fileModifiedAt": "2024-01-01T00:00:00Z"}
            files = {"assetData": ("a.jpg", photo.read_bytes())}
            created = await http.post("/assets", data=form, files=files)
            calls.append(("/assets", "post", 201, created))
            calls.append(("/assets", "post", 200, await http.post("/assets", data=form, files=files)))
            asset_id = created.json()["id"]
            calls.append(("/albums/{id}/assets", "put", 200,
                          await http.put(f"/albums/{album.json()['id']}/assets", json={"ids": [asset_id, str(uuid.uuid4())]})))
            import hashlib

            check = {"assets": [{"id": "1", "checksum": hashlib.sha1(photo.read_bytes()).hexdigest()},
                                {"id": "2", "checksum": "0" * 40}]}
            calls.append(("/assets/bulk-upload-check", "post", 200, await http.post("/assets/bulk-upload-check", json=check)))
            return calls

    for path, method, status, response in asyncio.run(run()):
        assert response.status_code == status, (path, response.text)
        conforms(spec, schema(spec, path, method, status), response.json(), f"{method.upper()} {path}")


def test_client_sends_only_fields_immich_knows(spec, tmp_path):
    """What ImmichClient really puts on the wire (captured, not listed here) fits Immich's spec."""
    from immich_drop.immich import ImmichClient

    sent: dict[str, list] = {}

    def record(request: httpx.Request) -> httpx.Response:
        body = request.read()
        if request.url.path.endswith("/assets"):
            sent["upload"] = re.findall(rb'Content-Disposition: form-data; name="([^"]+)"', body)
            return httpx.Response(201, json={"id": str(uuid.uuid4()), "status": "created"})
        if request.url.path.endswith("/bulk-upload-check"):
            sent["check"] = json.loads(body)["assets"]
            return httpx.Response(200, json={"results": []})
        sent["album"] = json.loads(body)
        return httpx.Response(201, json={"id": str(uuid.uuid4())})

    photo = tmp_path / "a.jpg"
    photo.write_bytes((MEDIA / "exif_offset.jpg").read_bytes())

    async def run():
        client = ImmichClient("http://i/api", transport=httpx.MockTransport(record))
        await client.upload_asset("k", photo, photo.stat().st_size, filename="a.jpg",
                                  created_at="2024-01-01T00:00:00Z", modified_at="2024-01-01T00:00:00Z", checksum="0" * 40)
        await client.bulk_upload_check("k", [("1", "0" * 40)])
        await client.create_album("k", "A")
        await client.aclose()

    asyncio.run(run())
    create = resolve(spec, spec["paths"]["/assets"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"])
    fields = {name.decode() for name in sent["upload"]}
    assert fields <= set(create["properties"]) and set(create["required"]) <= fields
    album = resolve(spec, spec["paths"]["/albums"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    assert set(sent["album"]) <= set(album["properties"]) and set(album["required"]) <= set(sent["album"])
    check = resolve(spec, spec["components"]["schemas"]["AssetBulkUploadCheckItem"])
    assert set(sent["check"][0]) == set(check["required"])
