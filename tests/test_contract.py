"""The fake Immich and our client speak Immich v3.1.0's own OpenAPI shapes.

Reads ../shared/immich/immich-openapi-specs.json (Immich's file, not copied into this repository);
skips with a reason where it is absent.
"""

import asyncio
import json

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
                          await http.put(f"/albums/{album.json()['id']}/assets", json={"ids": [asset_id, "nope"]})))
            import hashlib

            check = {"assets": [{"id": "1", "checksum": hashlib.sha1(photo.read_bytes()).hexdigest()},
                                {"id": "2", "checksum": "0" * 40}]}
            calls.append(("/assets/bulk-upload-check", "post", 200, await http.post("/assets/bulk-upload-check", json=check)))
            return calls

    for path, method, status, response in asyncio.run(run()):
        assert response.status_code == status, (path, response.text)
        conforms(spec, schema(spec, path, method, status), response.json(), f"{method.upper()} {path}")


def test_client_sends_only_fields_immich_knows(spec):
    create = resolve(spec, spec["paths"]["/assets"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"])
    sent = {"filename", "fileCreatedAt", "fileModifiedAt", "isFavorite", "assetData"}
    assert sent <= set(create["properties"])
    assert set(create["required"]) <= sent
    album = resolve(spec, spec["paths"]["/albums"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    assert "albumName" in album["required"]
    check = resolve(spec, spec["components"]["schemas"]["AssetBulkUploadCheckItem"])
    assert set(check["required"]) == {"id", "checksum"}
