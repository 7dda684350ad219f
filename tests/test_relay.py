"""The relay: a large video goes on to Immich while the guest is still uploading it.

Each test sends the first part of a video with one PATCH, sees the fake Immich read those bytes
before the upload is complete, then finishes (or stalls, or cancels) and checks what Immich kept.
"""

import base64

import pytest

from conftest import invite_token, make_file, sha1_of, wait_until
from immich_drop.models import Upload
from immich_drop.relay import Relay

MiB = 1024 * 1024
FIRST = 2 * MiB
LAST_MODIFIED_MS = 1_600_000_000_000  # 2020-09-13T12:26:40Z


def _meta(**fields) -> str:
    return ",".join(f"{k} {base64.b64encode(str(v).encode()).decode()}" for k, v in fields.items())


def _start(drop, guest, path, filename="wedding.mp4") -> str:
    """Create the upload and send its first FIRST bytes; returns the upload id."""
    meta = _meta(filename=filename, filetype="video/mp4", lastModified=LAST_MODIFIED_MS)
    created = guest.http.post("/api/uploads", headers=guest.tus_headers(
        **{"Upload-Length": str(path.stat().st_size), "Upload-Metadata": meta}))
    assert created.status_code == 201, created.text
    uid = created.headers["Location"].rsplit("/", 1)[-1]
    _patch(guest, uid, path.read_bytes()[:FIRST], 0)
    return uid


def _patch(guest, uid, body, offset):
    response = guest.http.patch(f"/api/uploads/{uid}", content=body, headers=guest.tus_headers(
        **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}))
    assert response.status_code == 204, response.text


def _finish(guest, uid, path):
    _patch(guest, uid, path.read_bytes()[FIRST:], FIRST)


@pytest.fixture
def video(tmp_path):
    return make_file(tmp_path / "wedding.mp4", 5 * MiB + 321, seed=11)


def test_video_reaches_immich_while_it_arrives(make_drop, fake, video):
    drop = make_drop(STREAM_MIN_SIZE="1MiB")
    guest = drop.guest()
    uid = _start(drop, guest, video)
    wait_until(lambda: fake.upload_bytes >= FIRST, what="Immich reading the first part")
    assert fake.uploads == []  # Immich is still waiting for the rest

    _finish(guest, uid, video)
    event = guest.wait_for(uid, ["done", "duplicate", "failed"])
    assert event["state"] == "done", event
    [received] = fake.uploads
    assert (received.sha1, received.size, received.filename) == (sha1_of(video), video.stat().st_size, "wedding.mp4")
    # filename before the file (Immich checks its extension while the file streams); the dates after it,
    # read from the complete file (a video's date is in its last box): here none inside, so lastModified.
    order = received.field_order
    assert order[0] == "filename" and order.index("assetData") < order.index("fileCreatedAt")
    assert received.file_created_at == "2020-09-13T12:26:40.000+00:00"
    assert received.checksum_header is None
    assert ("POST", "/api/assets/bulk-upload-check") not in fake.requests  # sent once, not checked first
    [album] = fake.albums_named(fake.owner_of(drop.key), "Guests")
    assert album.assets == [received.asset_id]
    row = drop.upload_row(uid)
    assert (row.checksum, row.asset_id) == (sha1_of(video), received.asset_id)
    assert not (drop.settings.staging_dir / uid).exists()


def test_a_stalled_relay_is_abandoned_and_the_file_sent_once_complete(make_drop, fake, video):
    drop = make_drop(STREAM_MIN_SIZE="1MiB", STREAM_STALL_SECONDS="0.2")
    guest = drop.guest()
    uid = _start(drop, guest, video)
    wait_until(lambda: fake.upload_aborts == 1, what="the relay giving up on a silent guest")
    assert fake.upload_bytes >= FIRST and fake.uploads == []

    _finish(guest, uid, video)
    assert guest.wait_for(uid, ["done", "duplicate", "failed"])["state"] == "done"
    [received] = fake.uploads
    assert received.sha1 == sha1_of(video)
    assert received.checksum_header == sha1_of(video)  # the usual way: checked, then sent
    relays = drop.services.pipeline.metrics.relays
    assert (relays.labels(outcome="abandoned")._value.get(), relays.labels(outcome="sent")._value.get()) == (1, 0)
    assert received.file_created_at == "2020-09-13T12:26:40.000Z"


def test_a_cancelled_upload_ends_its_relay(make_drop, fake, video):
    drop = make_drop(STREAM_MIN_SIZE="1MiB", STREAM_STALL_SECONDS="600")
    guest = drop.guest()
    uid = _start(drop, guest, video)
    wait_until(lambda: fake.upload_bytes >= FIRST, what="Immich reading the first part")

    gone = guest.http.delete(f"/api/uploads/{uid}", headers=guest.tus_headers())
    assert gone.status_code == 204
    wait_until(lambda: fake.upload_aborts == 1, what="the relay ending with the upload")  # not the 600 s stall
    assert fake.uploads == []


def test_a_restart_ends_the_relay_and_the_guest_resumes(make_drop, fake, video):
    drop = make_drop(STREAM_MIN_SIZE="1MiB", STREAM_STALL_SECONDS="600")
    guest = drop.guest()
    uid = _start(drop, guest, video)
    wait_until(lambda: fake.upload_bytes >= FIRST, what="Immich reading the first part")
    session = guest.session

    drop.restart()
    wait_until(lambda: fake.upload_aborts == 1, what="the relay ending with the server")
    back = drop.guest(session)
    _finish(back, uid, video)  # the first part is on disk: only the rest goes again
    assert back.wait_for(uid, ["done", "duplicate", "failed"])["state"] == "done"
    [received] = fake.uploads
    assert received.sha1 == sha1_of(video)


def test_a_relayed_duplicate_is_reported_as_one(make_drop, fake, video):
    drop = make_drop(STREAM_MIN_SIZE="1MiB")
    first, second = drop.guest(), drop.guest()
    ids = []
    for guest in (first, second):
        uid = _start(drop, guest, video)
        _finish(guest, uid, video)
        ids.append((guest.wait_for(uid, ["done", "duplicate", "failed"]), uid))
    (one, uid_one), (two, uid_two) = ids
    assert (one["state"], two["state"]) == ("done", "duplicate")
    [received] = fake.uploads
    assert drop.upload_row(uid_one).asset_id == drop.upload_row(uid_two).asset_id == received.asset_id
    assert fake.upload_bytes >= 2 * video.stat().st_size  # the price: Immich read it twice, the guest sent it once each


@pytest.mark.parametrize("name, size, relayed", [
    ("clip.mp4", 64 * MiB, True), ("clip.MOV", 100 * MiB, True), ("clip.mp4", 64 * MiB - 1, False),
    ("photo.jpg", 100 * MiB, False), ("scan.tiff", 100 * MiB, False),
])
def test_only_large_videos_are_relayed(tmp_path, name, size, relayed):
    from conftest import settings_for

    relay = Relay(settings_for(tmp_path, "http://127.0.0.1:9/api"), None, None, None)
    upload = Upload(id="0" * 32, session_id="s", target_kind="public", target_id="", filename=name, size=size)
    assert relay.wants(upload) is relayed
    assert Relay(settings_for(tmp_path, "http://127.0.0.1:9/api", STREAM_MIN_SIZE="0"), None, None, None) \
        .wants(upload) is False


def test_a_video_through_an_invite_is_relayed_with_its_owners_key(make_drop, admin_of, fake, video):
    drop = make_drop(STREAM_MIN_SIZE="1MiB", PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = admin_of(drop)
    invite = admin.invite(label="Wedding", album={"name": "Wedding videos"}, expiresInDays=7)
    guest = drop.guest()
    uid = guest.invite_upload(video, invite_token(invite), chunk_size=MiB)
    assert guest.wait_for(uid, ["done", "duplicate", "failed"])["state"] == "done"

    owner = [u for u, user in fake.users.items() if user["email"] == "ada@example.org"][0]
    [received] = fake.uploads
    assert (received.owner, received.sha1, received.checksum_header) == (owner, sha1_of(video), None)  # relayed
    [album] = fake.albums_named(owner, "Wedding videos")
    assert album.assets == [received.asset_id] and album.id == admin.call("GET", f"/api/invites/{invite['id']}").json()["albumId"]
    relays = drop.services.pipeline.metrics.relays
    assert relays.labels(outcome="sent")._value.get() == 1
