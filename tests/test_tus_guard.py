"""Every request the guard refuses gets a clear 4xx, and not one byte of it reaches the disk."""

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SIGNATURES, Guest, _b64, invite_token, make_file, sha1_of, wait_until
from fake_immich import VIDEO_TYPES

CHUNK = 256 * 1024
JPEG = SIGNATURES[".jpg"]  # what a file named .jpg must start with


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
        ({"Upload-Length": "9" * 26}, 413),
        ({"Upload-Length": "+5"}, 400),
        ({"Upload-Length": "1_000"}, 400),
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


def test_a_refusal_of_an_absurd_length_through_a_link_is_logged_not_a_crash(drop, admin_of):
    """A link logs the creations it refuses for its owner. A length of 26 digits crashed that log
    (a database integer overflow) into a bare 500 with no tus header."""
    admin = admin_of(drop)
    invite = admin.invite()
    guest = drop.guest()
    response = guest.create(int("9" * 26), "huge.mp4", invite=invite_token(invite))
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    log = admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()
    assert [(row["filename"], row["state"], row["code"], row["size"]) for row in log] == [
        ("huge.mp4", "refused", "too_large", 2**62)]


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


def test_upload_expires_is_the_sweeps_from_creation_on(make_drop):
    """tus's expiration extension: a creation said 2036 (tuspyserver's own ten-year setting) while
    the sweep removes an upload left idle for UPLOAD_EXPIRY_HOURS; a PATCH said the sweep's."""
    import time
    from email.utils import parsedate_to_datetime

    drop = make_drop(CHUNK_SIZE=CHUNK, UPLOAD_EXPIRY_HOURS="6")
    guest = drop.guest()
    before = time.time()
    response = guest.create(1000)
    assert response.status_code == 201
    created_says = parsedate_to_datetime(response.headers["Upload-Expires"]).timestamp()
    assert before + 6 * 3600 - 2 <= created_says <= time.time() + 6 * 3600 + 1
    uid = response.headers["Location"].rsplit("/", 1)[-1]
    patched = patch(guest, uid)
    assert patched.status_code == 204
    assert abs(parsedate_to_datetime(patched.headers["Upload-Expires"]).timestamp() - created_says) < 5


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
    # a bidi override goes; the joiner of an emoji sequence stays (it arrived as "👰♀️": walk)
    uid = created(guest, filename="bride \U0001f470\u200d\u2640\ufe0f \u202egpj.exe.jpg")
    assert drop.upload_row(uid).filename == "bride \U0001f470\u200d\u2640\ufe0f gpj.exe.jpg"
    uid = created(guest, filename="\u200c \u200dholiday.jpg\u200d")  # joiners joining nothing: gone (cold review)
    assert drop.upload_row(uid).filename == "holiday.jpg"


def test_termination_removes_an_incomplete_upload(drop):
    guest = drop.guest()
    uid = created(guest)
    assert patch(guest, uid, body=JPEG + b"12345" * 4).status_code == 204
    response = guest.http.delete(f"/api/uploads/{uid}", headers=guest.tus_headers())
    assert response.status_code == 204
    assert on_disk(drop, uid) == -1
    assert drop.upload_row(uid) is None


def test_a_cancel_that_loses_the_race_to_the_last_byte_changes_nothing(one_file_link):
    """A DELETE found the upload receiving, then waited for the lock of a PATCH that wrote the last
    byte meanwhile (its hook made the file a delivery). It hears 409, and the file stays the
    link's: delivered once, still counted (the DELETE removed the row and gave its place back, so an
    attack run filled a one-file album with eleven)."""
    drop, guest, token = one_file_link
    response = guest.create(1000, "photo.jpg", invite=token)
    uid = response.headers["Location"].rsplit("/", 1)[-1]
    locks = drop.services.storage.locks
    original = locks.take_over
    tab = Guest(drop.url, session=guest.session)  # the same browser, another connection

    async def last_byte_first(*args, **kwargs):
        # the PATCH with the last byte ends while the DELETE waits for the lock (the PATCH itself
        # takes the lock the ordinary way)
        locks.take_over = original
        assert (await asyncio.to_thread(patch, tab, uid, JPEG + b"y" * 996)).status_code == 204
        return await original(*args, **kwargs)

    locks.take_over = last_byte_first
    cancel = guest.http.delete(f"/api/uploads/{uid}", headers=guest.tus_headers())
    assert cancel.status_code == 409 and cancel.json()["code"] == "complete"
    assert guest.wait_for(uid, "done")["state"] == "done" and len(drop.fake.uploads) == 1
    assert drop.server.call(drop.services.store.get_invite(drop.upload_row(uid).target_id)).files == 1
    refused = guest.create(1000, "other.jpg", invite=token)  # the link's one file is this one
    assert refused.status_code == 403 and refused.json()["code"] == "limit_reached"
    tab.close()


# --- a creation sent again: its answer was lost on the network ----------------------------------
KEY = "k3y-of-one-file_0123456789abcdef"
AGAIN = {"Immich-Drop-Retry": "1"}


@pytest.fixture
def one_file_link(make_drop, admin_of):
    """(drop, a guest on a link that takes one file, its token)."""
    drop = make_drop(CHUNK_SIZE=CHUNK, MAX_UPLOAD_SIZE=10 * CHUNK, PUBLIC_UPLOAD_PAGE_ENABLED="false")
    token = invite_token(admin_of(drop).invite(maxFiles=1))
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    return drop, guest, token


def test_a_creation_sent_again_gets_the_upload_the_first_one_made(one_file_link, tmp_path):
    """The guest page's POST reached the server, its answer did not; tus-js-client sends it again.
    Without the key the second one took another place in the link's limits ("limit reached" on a
    one-file link, until the first expired a day later): with it, the answer is the first upload."""
    drop, guest, token = one_file_link
    photo = make_file(tmp_path / "photo.jpg", 3000, seed=5)
    first = guest.create(3000, invite=token, meta={"uploadKey": KEY})
    assert first.status_code == 201, first.text
    again = guest.create(3000, invite=token, meta={"uploadKey": KEY}, **AGAIN)
    assert again.status_code == 201, again.text
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Tus-Resumable"] == "1.0.0"
    uid = first.headers["Location"].rsplit("/", 1)[-1]
    # without the page's "sent again" the key is not looked up: a new creation, over the link's one file
    refused = guest.create(3000, invite=token, meta={"uploadKey": KEY})
    assert refused.status_code == 403 and refused.json()["code"] == "limit_reached"
    guest.uploader(photo, url=first.headers["Location"]).upload()
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert [u.sha1 for u in drop.fake.uploads] == [sha1_of(photo)]
    rows = drop.server.call(drop.services.store.uploads_for_session(drop.upload_row(uid).session_id))
    assert [row.id for row in rows] == [uid]
    # delivered: the key finds nothing still waiting for its bytes, so it is a new creation again
    late = guest.create(3000, invite=token, meta={"uploadKey": KEY}, **AGAIN)
    assert late.status_code == 403 and late.json()["code"] == "limit_reached"


@pytest.mark.parametrize("who, size, name", [("another browser", 3000, "photo.jpg"),
                                             ("same browser", 3001, "photo.jpg"),
                                             ("same browser", 3000, "other.jpg")])
def test_a_key_gives_only_the_same_file_of_the_same_browser(one_file_link, who, size, name):
    drop, guest, token = one_file_link
    assert guest.create(3000, invite=token, meta={"uploadKey": KEY}).status_code == 201
    asker = guest if who == "same browser" else drop.guest()
    asker.http.get(f"/i/{token}")
    response = asker.create(size, name, invite=token, meta={"uploadKey": KEY}, **AGAIN)
    assert response.status_code == 403 and response.json()["code"] == "limit_reached"  # a new one: no room


def test_a_key_gives_only_an_upload_of_the_same_link(make_drop, admin_of):
    """A key made on link A, asked for again naming link B or the public page: not A's upload (its
    creation passed A's checks, not B's) but a creation of its own, through B's checks."""
    drop = make_drop(CHUNK_SIZE=CHUNK, MAX_UPLOAD_SIZE=10 * CHUNK)
    admin = admin_of(drop)
    a, b = (invite_token(admin.invite(maxFiles=1)) for _ in range(2))
    guest = drop.guest()
    for token in (a, b):
        guest.http.get(f"/i/{token}")
    made = guest.create(3000, invite=a, meta={"uploadKey": KEY})
    for token in (b, None):
        other = guest.create(3000, invite=token, meta={"uploadKey": KEY}, **AGAIN)
        assert other.status_code == 201 and other.headers["Location"] != made.headers["Location"]
    assert guest.create(3000, invite=a, meta={"uploadKey": KEY}, **AGAIN).headers["Location"] == made.headers["Location"]


def test_a_key_of_an_upload_that_ended_gives_a_new_one(drop):
    """Expired (the janitor) or cancelled: the key finds nothing, the file is created anew."""
    guest = drop.guest()
    expired = guest.create(1000, meta={"uploadKey": KEY}).headers["Location"]
    assert drop.server.call(drop.services.pipeline.sweep(now=10**12)) == 1
    anew = guest.create(1000, meta={"uploadKey": KEY}, **AGAIN)
    assert anew.status_code == 201 and anew.headers["Location"] != expired
    assert guest.http.delete(anew.headers["Location"], headers=guest.tus_headers()).status_code == 204
    third = guest.create(1000, meta={"uploadKey": KEY}, **AGAIN)
    assert third.status_code == 201 and third.headers["Location"] not in (expired, anew.headers["Location"])


@pytest.mark.parametrize("key", ["short", "x" * 65, "has space in it 0123", "ключ-0123456789abcdef"])
def test_a_malformed_upload_key_is_refused(drop, key):
    guest = drop.guest()
    response = guest.create(1000, meta={"uploadKey": key})
    assert response.status_code == 400 and "uploadKey" in response.json()["message"]
    assert drop.server.call(drop.services.store.count_by_state()) == {}


def test_a_creation_sent_again_while_the_first_is_being_made_waits(drop):
    """The first creation is still in tuspyserver (its row written, its sidecar not): its upload is
    not handed out half made. 423, which tus-js-client and the page answer by asking again."""
    guest = drop.guest()
    storage = drop.services.storage
    made, go_on = threading.Event(), threading.Event()
    original = storage.create

    async def slow_create(uid):
        made.set()
        await asyncio.to_thread(go_on.wait, 20)
        return await original(uid)

    storage.create = slow_create
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(guest.create, 1000, meta={"uploadKey": KEY})
        assert made.wait(20)
        other = Guest(drop.url, session=guest.session)
        waiting = other.create(1000, meta={"uploadKey": KEY}, **AGAIN)
        assert waiting.status_code == 423 and waiting.json()["code"] == "busy"
        go_on.set()
        assert first.result().status_code == 201
    again = other.create(1000, meta={"uploadKey": KEY}, **AGAIN)
    assert again.status_code == 201 and again.headers["Location"] == first.result().headers["Location"]
    other.close()


def test_a_creation_sent_again_waits_for_the_staged_files_of_the_first(drop):
    """Behind several replicas the first creation may be in another process, whose "being made"
    mark this one cannot see: its upload is handed out only once its data file and sidecar are
    both on the shared disk (here: the sidecar taken away, as before tuspyserver writes it)."""
    guest = drop.guest()
    made = guest.create(1000, meta={"uploadKey": KEY}).headers["Location"]
    sidecar = drop.services.storage.info_path(made.rsplit("/", 1)[-1])
    kept = sidecar.read_bytes()
    sidecar.unlink()
    waiting = guest.create(1000, meta={"uploadKey": KEY}, **AGAIN)
    assert waiting.status_code == 423 and waiting.json()["code"] == "busy"
    sidecar.write_bytes(kept)
    assert guest.create(1000, meta={"uploadKey": KEY}, **AGAIN).headers["Location"] == made


@pytest.mark.parametrize("name, start", [
    ("notes.jpg", b"Dear all, the party starts at eight."),  # a text file renamed
    ("clip.mp4", b"<html><body>not a video</body></html>"),
    ("menu.png", "Меню на субботу: салаты".encode()),  # text in another script
    ("scan.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"\x00" * 30),
    ("album.heic", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40),  # a ZIP
    ("tiny.jpg", b"hi"),  # shorter than the bytes read: the whole file is judged
    ("setup.jpg", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 30),  # a program
    ("voice.mp4", b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\x00" * 30),  # a sound recording
    ("notes.png", "\ufeffDear all, see you".encode("utf-16-le")),  # Notepad's "Unicode"
    ("brief.jpg", "Grüße aus München, eure Anna".encode("cp1252")),  # Windows' "ANSI"
    ("song.mp4", b"ID3\x04\x00\x00\x00\x00\x00\x00TIT2" + b"\x00" * 30),
    # every extension Immich takes is checked, not only the common ones (probe)
    ("raw.nef", b"Notes from the trip, day one."),
    ("holiday.mts", b"<!DOCTYPE html><html><body>hello</body></html>"),
    ("party.wmv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"\x00" * 30),
    ("fuji.raf", b"FUJI photos, the list of them all"),
    ("canon.cr3", b'{"photos": ["a", "b", "c"]}'),
])
def test_a_file_whose_first_bytes_are_not_what_its_name_says_is_refused_before_a_byte_is_written(
        make_drop, admin_of, name, start):
    """Immich v3.1.0 checks only the extension: a text file named .jpg became an "image" asset with
    no thumbnail in the owner's album, and the guest heard "done". Its first PATCH is refused (415,
    not_media) with nothing written; the upload ends and its place in the link goes back; the owner's
    log says why."""
    drop = make_drop(CHUNK_SIZE=CHUNK, MAX_UPLOAD_SIZE=10 * CHUNK)
    admin = admin_of(drop)
    invite = admin.invite(maxFiles=1)
    token = invite_token(invite)
    guest = drop.guest()
    response = guest.create(len(start), name, invite=token)
    uid = response.headers["Location"].rsplit("/", 1)[-1]
    refused = patch(guest, uid, body=start)
    assert refused.status_code == 415 and refused.json()["code"] == "not_media"
    assert refused.json()["params"] == {"ext": "." + name.rsplit(".", 1)[1]}
    assert drop.upload_row(uid) is None and on_disk(drop, uid) == -1
    assert drop.server.call(drop.services.storage.list_uids()) == []
    log = admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()
    assert [(row["filename"], row["state"], row["code"]) for row in log] == [(name, "refused", "not_media")]
    fitting = guest.create(10, "real.jpg", invite=token)  # the link's one file is free again
    uid = fitting.headers["Location"].rsplit("/", 1)[-1]
    assert patch(guest, uid, body=SIGNATURES[".jpg"] + b"\x00" * 6).status_code == 204
    assert guest.wait_for(uid, "done")["state"] == "done" and len(drop.fake.uploads) == 1


@pytest.mark.parametrize("name, start", [
    ("saved.jpg", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 40),  # a browser's "save image as" of a WebP
    ("scan.png", SIGNATURES[".jpg"] + b"\x00" * 40),  # a JPEG named .png: Immich reads the content
    ("clip.png", SIGNATURES[".mp4"] + b"\x00" * 40),  # a known format of the other kind: Immich decides
    ("photo.heic", b"\x00\x00\x00\x18ftypmif1" + b"\x00" * 40),
    ("picture.avif", b"\x00\x00\x00\x1cftypavif" + b"\x00" * 40),
    ("old.mov", b"\x00\x00\x00\x08wide" + b"\x00" * 40),  # QuickTime without ftyp
    ("raw.dng", b"II*\x00" + b"\x00" * 40),
    ("noise.jpg", bytes(range(200, 256)) + bytes(range(0, 40))),  # binary of no known format
    ("fuji.raf", b"FUJIFILMCCD-RAW 0201FF383501" + b"\x00" * 20),  # a RAW whose start reads as text
    ("olympus.orf", b"IIRO\x08\x00\x00\x00" + b"\x00" * 40),
    ("panasonic.rw2", b"IIU\x00\x18\x00\x00\x00" + b"\x00" * 40),
    ("canon.crw", b"II\x1a\x00\x00\x00HEAPCCDR" + b"\x00" * 40),
    ("canon.cr3", b"\x00\x00\x00\x18ftypcrx " + b"\x00" * 40),
    ("sigma.x3f", b"FOVb\x00\x00\x02\x00" + b"\x00" * 40),
    ("layers.psd", b"8BPS\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x00" * 40),
    ("new.jxl", b"\xff\x0a\xfa\x7f" + b"\x00" * 40),
    ("camcorder.mts", b"\x00\x00\x00\x00\x47\x40\x00\x10" + b"\x00" * 40),
    ("dvd.vob", b"\x00\x00\x01\xba\x44\x00\x04\x00" + b"\x00" * 40),
    ("old.wmv", b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c" + b"\x00" * 40),
])
def test_photos_videos_and_unknown_binary_pass_whatever_their_name(drop, name, start):
    guest = drop.guest()
    uid = created(guest, len(start), name)
    assert patch(guest, uid, body=start).status_code == 204


def test_a_client_sending_tiny_chunks_is_not_judged_on_a_few_bytes(drop):
    """tus clients may send chunks of a few bytes; a first PATCH too short to tell is written, not
    judged on what it has (a WebP's first 10 bytes are not yet a WebP)."""
    guest = drop.guest()
    start = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 20
    uid = created(guest, len(start), "saved.webp")
    for offset in range(0, len(start), 5):
        assert patch(guest, uid, body=start[offset:offset + 5], **{"Upload-Offset": str(offset)}).status_code == 204
    assert guest.wait_for(uid, "done")["state"] == "done"


def test_a_first_patch_cut_before_the_bytes_are_checked_writes_nothing(drop):
    """A client that sends a few bytes of its first PATCH and goes away: not a byte of an unchecked
    start is kept, so the next PATCH is at offset 0 again and is checked."""
    guest = drop.guest()
    uid = created(guest, 1000)
    locks, taken = drop.services.storage.locks, []
    original = locks.take_over

    async def noted(*args, **kwargs):
        held = await original(*args, **kwargs)
        taken.append(held)
        return held

    locks.take_over = noted
    with socket.create_connection(("127.0.0.1", drop.server.port)) as raw:
        head = (f"PATCH /api/uploads/{uid} HTTP/1.1\r\nHost: 127.0.0.1:{drop.server.port}\r\n"
                f"Cookie: {guest.cookie}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                "Content-Type: application/offset+octet-stream\r\nContent-Length: 1000\r\n\r\n")
        raw.sendall(head.encode() + b"\xff\xd8")
    wait_until(lambda: taken and taken[0].released.is_set())  # the cut PATCH has been through and let go
    locks.take_over = original
    answer = guest.http.head(f"/api/uploads/{uid}", headers=guest.tus_headers())
    assert answer.headers["Upload-Offset"] == "0" and on_disk(drop, uid) == 0
    assert patch(guest, uid, body=b"plain text, not a photo").status_code == 415


def test_text_in_the_metadata_is_kept_as_text_every_database_holds(one_file_link):
    """Attack run: a NUL in filetype or tzName made PostgreSQL refuse the upload's row, a 500
    after the link's limits were reserved, so four such creations filled a four-file link for good.
    Both are kept as printable text (on SQLite and PostgreSQL alike), and a zone name that is none
    is dropped: it is only a hint for undated files."""
    drop, guest, token = one_file_link
    created = guest.create(10, invite=token, meta={"filetype": "image/jpeg\x00\x1b[2J", "tzName": "Europe/Berlin\x00"})
    assert created.status_code == 201, created.text
    row = drop.upload_row(created.headers["Location"].rsplit("/", 1)[-1])
    assert (row.filetype, row.tz_name) == ("image/jpeg[2J", None)
    assert guest.create(10, invite=token).json()["code"] == "limit_reached"  # the one file is that one


def test_a_creation_the_database_refuses_gives_back_what_it_reserved(one_file_link):
    drop, guest, token = one_file_link
    store = drop.services.store
    real = store.add_upload

    async def refused(upload):
        raise RuntimeError("the database refused the row")

    store.add_upload = refused
    try:
        assert guest.create(10, invite=token).status_code == 500
    finally:
        store.add_upload = real
    assert guest.create(10, invite=token).status_code == 201  # the link's one file was given back


def test_a_browser_without_a_links_password_writes_no_text_into_its_log(drop, admin_of):
    """Attack run: anyone with a password link's address, without its password, could put a file
    name and a guest name of their choosing into the owner's console ("CALL +1-555-0100 to verify
    your account.jpg"). The refusal is logged, without what that browser wrote."""
    admin = admin_of(drop)
    invite = admin.invite(password="open sesame")
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    refused = guest.create(10, "CALL +1-555-0100 now.jpg", invite=token, meta={"guestName": "Immich Security"})
    assert refused.json()["code"] == "needs_password"
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"}).status_code == 204
    too_big = guest.create(10**15, "holiday.jpg", invite=token, meta={"guestName": "Anna"})
    assert too_big.json()["code"] == "too_large"
    log = admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()
    assert sorted((row["filename"], row["guestName"], row["code"], row["size"]) for row in log) == [
        ("", "", "needs_password", 10), ("holiday.jpg", "Anna", "too_large", 10**15)]


@pytest.mark.parametrize("change, code", [({"maxFileSize": 1000}, "file_too_large"),
                                          ({"mediaKind": "videos"}, "videos_only")])
def test_a_file_the_link_no_longer_takes_stops_at_its_next_patch(drop, admin_of, change, code):
    """Owner walk: the owner lowered "Largest file" while an 11.7 MB photo was on its way; the guest's
    page showed the new limit and the photo went on into Immich. The README says files on their way
    stop and say why: the next PATCH is refused with the link's reason, and the upload ends as a
    cancel does (its bytes, its row, its place in the link's count), in the owner's log."""
    admin = admin_of(drop)
    invite = admin.invite(maxFiles=3)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    made = guest.create(3 * CHUNK, "party.jpg", invite=token)
    uid = made.headers["Location"].rsplit("/", 1)[-1]
    assert patch(guest, uid, body=JPEG + b"x" * (CHUNK - len(JPEG))).status_code == 204
    assert admin.call("PATCH", f"/api/invites/{invite['id']}", json=change).status_code == 200
    refused = patch(guest, uid, body=b"y" * CHUNK, **{"Upload-Offset": str(CHUNK)})
    assert refused.status_code in (413, 415) and refused.json()["code"] == code, refused.text
    assert on_disk(drop, uid) == -1 and drop.upload_row(uid) is None
    card = next(i for i in admin.call("GET", "/api/invites").json() if i["id"] == invite["id"])
    assert (card["files"], card["bytes"]) == (0, 0)
    log = admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()
    assert [(row["filename"], row["state"], row["code"]) for row in log] == [("party.jpg", "refused", code)]


@pytest.mark.parametrize("cuts", [[1], [3, 9], [15]])
def test_a_start_sent_in_tiny_pieces_is_judged_by_the_piece_that_completes_it(drop, cuts):
    """Attack run: HTML named .jpg went through as a PATCH of one byte, then the rest: a first PATCH
    too short to tell was never judged, nor was any after it. The PATCH that brings the last of the
    first bytes is judged with those kept before it; the upload then ends as a single PATCH's would."""
    guest = drop.guest()
    html = b"<!doctype html><script>alert(1)</script>" + b" " * 100
    uid = created(guest, len(html), "y.jpg")
    offset = 0
    for cut in cuts:
        assert patch(guest, uid, body=html[offset:cut], **{"Upload-Offset": str(offset)}).status_code == 204
        offset = cut
    refused = patch(guest, uid, body=html[offset:30], **{"Upload-Offset": str(offset)})  # not the last PATCH
    assert refused.status_code == 415 and refused.json()["code"] == "not_media", refused.text
    assert on_disk(drop, uid) == -1 and drop.upload_row(uid) is None
    photo = JPEG + b"\x00" * 100  # a real start in the same pieces goes through
    uid = created(guest, len(photo), "z.jpg")
    offset = 0
    for cut in [*cuts, 30, len(photo)]:
        assert patch(guest, uid, body=photo[offset:cut], **{"Upload-Offset": str(offset)}).status_code == 204
        offset = cut


def test_a_refusal_that_loses_the_race_to_the_last_byte_leaves_the_delivery_its_file(drop, admin_of, fake):
    """Cold review: a PATCH that read its upload as still receiving, then found the link no longer
    takes the file, deleted the staged file although the last byte had landed meanwhile (a delivery
    needing it). The row is ended first; if it is not receiving any more, the answer is 409 and the
    file stays."""
    from immich_drop.models import UploadState

    admin = admin_of(drop)
    invite = admin.invite()
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    fake.fail_status = 503  # Immich away: the received file waits, staged
    body = JPEG + b"x" * 100
    uid = guest.create(len(body), "late.jpg", invite=token).headers["Location"].rsplit("/", 1)[-1]
    assert patch(guest, uid, body=body).status_code == 204
    wait_until(lambda: drop.upload_row(uid).state != UploadState.RECEIVING, what="the file received")
    assert admin.call("PATCH", f"/api/invites/{invite['id']}", json={"maxFileSize": 10}).status_code == 200
    store = drop.services.store
    real = store.upload_and_invite

    async def read_before_the_last_byte(upload_id):  # the row as this PATCH read it, before the lock
        upload, link = await real(upload_id)
        upload.state = UploadState.RECEIVING
        return upload, link

    store.upload_and_invite = read_before_the_last_byte
    try:
        late = patch(guest, uid, body=b"", **{"Upload-Offset": str(len(body))})
    finally:
        store.upload_and_invite = real
    assert late.status_code == 409 and late.json()["code"] == "complete", late.text
    assert on_disk(drop, uid) == len(body) and drop.upload_row(uid) is not None
    fake.fail_status = None


def test_one_address_notes_only_so_many_refusals_in_a_links_log(drop, admin_of):
    """Attack run: anyone with a link wrote 300 refusals in 3 s into its owner's log ("Your link is
    compromised, visit …" as file names), pushing the real ones out of the 200 kept. One address
    notes REFUSALS_NOTED an hour per link; every refusal is still answered."""
    from immich_drop.tus.guard import REFUSALS_NOTED

    admin = admin_of(drop)
    invite = admin.invite(mediaKind="photos")
    guest = drop.guest()
    for n in range(REFUSALS_NOTED + 5):
        refused = guest.create(100, f"visit evil.example {n}.mp4", invite=invite_token(invite))
        assert refused.status_code == 415 and refused.json()["code"] == "photos_only"
    log = admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()
    assert len(log) == REFUSALS_NOTED


def test_a_link_for_videos_takes_every_video_type_immich_takes(drop, admin_of):
    """A link for videos only refused an Insta360 .insv, a DVD's .vob and a broadcast .ts as "not a
    video" (its list had 13 of Immich's 20); one for photos only took them."""
    admin = admin_of(drop)
    videos, photos = (invite_token(admin.invite(mediaKind=kind)) for kind in ("videos", "photos"))
    guest = drop.guest()
    for token in (videos, photos):
        guest.http.get(f"/i/{token}")
    assert len(VIDEO_TYPES) == 20
    for ext in VIDEO_TYPES:
        made = guest.create(100, "clip" + ext, invite=videos)
        assert made.status_code == 201, (ext, made.text)
        assert guest.http.delete(made.headers["Location"], headers=guest.tus_headers()).status_code == 204
        refused = guest.create(100, "clip" + ext, invite=photos)
        assert refused.status_code == 415 and refused.json()["code"] == "photos_only", ext


def test_slashes_in_upload_addresses_are_taken_as_written_or_not_found(one_file_link, tmp_path):
    """tuspyserver's router answered "/api/uploads//" and "/api/uploads/<id>/" with a 307, after the
    guard had taken the creation's place or the upload's lock (probe). A trailing slash is taken as
    the address without it; a doubled or deeper one is not found, and takes nothing."""
    drop, guest, token = one_file_link
    photo = make_file(tmp_path / "photo.jpg", 3000, seed=6)
    meta = f"filename {_b64('photo.jpg')},filetype {_b64('image/jpeg')},invite {_b64(token)}"
    for path in ("/api/uploads//", "/api/uploads/x/y", "/api/uploads//x"):
        made = guest.http.post(path, headers=guest.tus_headers(**{"Upload-Length": "3000", "Upload-Metadata": meta}))
        assert made.status_code == 404 and made.json()["code"] == "not_found", (path, made.text)
    made = guest.http.post("/api/uploads/", headers=guest.tus_headers(**{"Upload-Length": "3000", "Upload-Metadata": meta}))
    assert made.status_code == 201, made.text  # the link's one file: nothing above took its place
    uid = made.headers["Location"].rsplit("/", 1)[-1]
    assert made.headers["Location"].endswith(f"/api/uploads/{uid}")
    head = guest.http.head(f"/api/uploads/{uid}/", headers=guest.tus_headers())
    assert (head.status_code, head.headers["Upload-Offset"]) == (200, "0")
    assert guest.http.head(f"/api/uploads/{uid}//", headers=guest.tus_headers()).status_code == 404
    body = photo.read_bytes()
    sent = guest.http.patch(f"/api/uploads/{uid}/", content=body, headers=guest.tus_headers(**{
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}))
    assert (sent.status_code, sent.headers["Upload-Offset"]) == (204, "3000"), sent.text
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert [u.sha1 for u in drop.fake.uploads] == [sha1_of(photo)]
