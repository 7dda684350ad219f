"""Every request the guard refuses gets a clear 4xx, and not one byte of it reaches the disk."""

import pytest

from conftest import _b64

CHUNK = 256 * 1024


@pytest.fixture
def drop(make_drop):
    return make_drop(CHUNK_SIZE=CHUNK, MAX_UPLOAD_SIZE=10 * CHUNK)


def created(guest, length=1000, filename="photo.jpg") -> str:
    response = guest.create(length, filename)
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def on_disk(drop, uid) -> int:
    path = drop.services.storage.data_path(uid)
    return path.stat().st_size if path.exists() else -1


def patch(guest, uid, body=b"x" * 10, **headers):
    base = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    base.update(headers)
    return guest.http.patch(f"/api/uploads/{uid}", content=body, headers=guest.tus_headers(**base))


@pytest.mark.parametrize(
    "change, status",
    [
        ({"Tus-Resumable": "0.2.2"}, 412),
        ({"Content-Type": "application/octet-stream"}, 415),
        ({"Upload-Offset": "5"}, 409),
        ({"Upload-Offset": "nope"}, 400),
        ({"X-HTTP-Method-Override": "DELETE"}, 400),
    ],
)
def test_bad_patch_writes_nothing(drop, change, status):
    guest = drop.guest()
    uid = created(guest)
    response = patch(guest, uid, **change)
    assert response.status_code == status, response.text
    assert on_disk(drop, uid) == 0


def test_patch_without_tus_resumable_writes_nothing(drop):
    guest = drop.guest()
    uid = created(guest)
    headers = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0", "Cookie": guest.cookie}
    response = guest.http.patch(f"/api/uploads/{uid}", content=b"abc", headers=headers)
    assert response.status_code == 412
    assert on_disk(drop, uid) == 0


def test_patch_without_content_length_writes_nothing(drop):
    guest = drop.guest()
    uid = created(guest)

    def body():
        yield b"streamed without a length"

    response = guest.http.patch(f"/api/uploads/{uid}", content=body(), headers=guest.tus_headers(
        **{"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}))
    assert response.status_code == 411
    assert on_disk(drop, uid) == 0


def test_patch_larger_than_two_chunks_is_refused(drop):
    guest = drop.guest()
    uid = created(guest, length=8 * CHUNK)
    response = patch(guest, uid, body=b"x" * (2 * CHUNK + 1))
    assert response.status_code == 413
    assert on_disk(drop, uid) == 0


def test_patch_past_upload_length_is_refused(drop):
    guest = drop.guest()
    uid = created(guest, length=10)
    response = patch(guest, uid, body=b"x" * 11)
    assert response.status_code == 400
    assert "Upload-Length" in response.json()["message"]
    assert on_disk(drop, uid) == 0


def test_unknown_and_foreign_uploads_are_not_found(drop):
    owner, stranger = drop.guest(), drop.guest()
    uid = created(owner)
    assert patch(stranger, uid).status_code == 404
    assert stranger.http.head(f"/api/uploads/{uid}", headers=stranger.tus_headers()).status_code == 404
    assert patch(owner, "0" * 32).status_code == 404
    assert patch(owner, "../../etc/passwd").status_code == 404
    assert on_disk(drop, uid) == 0


def test_patch_after_target_closed_writes_nothing(make_drop):
    drop = make_drop()
    guest = drop.guest()
    uid = created(guest)
    # The public page is switched off while the upload is open (e.g. a restart with new settings).
    object.__setattr__(drop.services.settings, "public_upload_page_enabled", False)
    response = patch(guest, uid)
    assert response.status_code == 403
    assert on_disk(drop, uid) == 0


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"Upload-Length": None}, 400),
        ({"Upload-Length": "0"}, 400),
        ({"Upload-Length": "-3"}, 400),
        ({"Upload-Length": str(10 * CHUNK + 1)}, 413),
        ({"Upload-Defer-Length": "1", "Upload-Length": None}, 400),
        ({"Upload-Concat": "partial"}, 400),
        ({"Upload-Concat": "final;/api/uploads/a /api/uploads/b"}, 400),
        ({"Upload-Metadata": f"filetype {_b64('image/jpeg')}"}, 400),
        ({"Upload-Metadata": f"filename {_b64('a.jpg')}"}, 400),
        ({"Upload-Metadata": f"filename {_b64('notes.txt')},filetype {_b64('text/plain')}"}, 415),
        ({"Upload-Metadata": f"filename {_b64('noextension')},filetype {_b64('image/jpeg')}"}, 415),
        ({"Upload-Metadata": "filename !!!notbase64"}, 400),
        ({"Tus-Resumable": None}, 412),
    ],
)
def test_creation_rules(drop, headers, status):
    guest = drop.guest()
    base = guest.tus_headers(**{"Upload-Length": "100",
                                "Upload-Metadata": f"filename {_b64('a.jpg')},filetype {_b64('image/jpeg')}"})
    for name, value in headers.items():
        base.pop(name, None)
        if value is not None:
            base[name] = value
    response = guest.http.post("/api/uploads", headers=base)
    assert response.status_code == status, response.text
    assert response.json()["message"]
    assert drop.server.call(drop.services.storage.list_uids()) == []


def test_creation_with_upload_is_refused(drop):
    guest = drop.guest()
    response = guest.http.post("/api/uploads", content=b"early bytes", headers=guest.tus_headers(**{
        "Upload-Length": "100", "Content-Type": "application/offset+octet-stream",
        "Upload-Metadata": f"filename {_b64('a.jpg')},filetype {_b64('image/jpeg')}"}))
    assert response.status_code == 400
    assert drop.server.call(drop.services.storage.list_uids()) == []


def test_creation_needs_a_session(drop):
    response = drop.guest().http.post("/api/uploads", headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": "10", "Cookie": "drop_session=forged.value",
        "Upload-Metadata": f"filename {_b64('a.jpg')},filetype {_b64('image/jpeg')}"})
    assert response.status_code == 403


def test_cross_origin_creation_is_refused(drop):
    guest = drop.guest()
    assert guest.create(10, Origin="https://evil.example").status_code == 403
    assert guest.create(10, Origin=drop.url).status_code == 201


def test_no_download_and_honest_options(drop):
    guest = drop.guest()
    uid = created(guest)
    assert guest.http.get(f"/api/uploads/{uid}", headers=guest.tus_headers()).status_code == 405
    options = guest.http.options("/api/uploads")
    assert options.status_code == 204
    assert options.headers["Tus-Extension"] == "creation,expiration,termination"
    assert options.headers["Tus-Max-Size"] == str(10 * CHUNK)


def test_filename_is_reduced_to_a_base_name(drop):
    guest = drop.guest()
    uid = created(guest, filename="../../evil\x00/..\\x/holiday.jpg")
    assert drop.upload_row(uid).filename == "holiday.jpg"


def test_termination_removes_an_incomplete_upload(drop):
    guest = drop.guest()
    uid = created(guest)
    assert patch(guest, uid, body=b"12345").status_code == 204
    response = guest.http.delete(f"/api/uploads/{uid}", headers=guest.tus_headers())
    assert response.status_code == 204
    assert on_disk(drop, uid) == -1
    assert drop.upload_row(uid) is None
