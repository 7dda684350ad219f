"""Against the real Immich v3.1.0 peer: each test asserts what Immich itself then holds (the asset by
its SHA-1, its date, its owner, its albums), never what Immich Drop says it did.

Skipped with the reason when the peer is absent (tests/peer.py); CI starts it in .ci/run.
"""

from __future__ import annotations

import os
import struct
import subprocess
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from conftest import MEDIA, Admin, invite_token, make_file, wait_until
from peer import ROOT, sha1, unique_copy

FINAL = ["done", "duplicate", "failed"]


@pytest.fixture
def real(make_real_drop):
    return make_real_drop()


def sign_in(drop, email: str, password: str) -> Admin:
    admin = Admin(drop.url)
    response = admin.login(email=email, password=password)
    assert response.status_code == 200, response.text
    return admin


def admin_invite(drop, peer, **fields) -> tuple[Admin, dict]:
    admin = sign_in(drop, peer.ADMIN_EMAIL, peer.ADMIN_PASSWORD)
    fields.setdefault("album", {"name": "Drop test " + __import__("os").urandom(3).hex()})
    return admin, admin.invite(**fields)


def test_dates_types_owner_and_album_as_immich_holds_them(real, peer, tmp_path):
    _, invite = admin_invite(real, peer)
    token = invite_token(invite)
    guest = real.guest()
    files = {  # name -> (fileCreatedAt Immich ends with, tus metadata)
        "exif_offset.jpg": ("2019-05-04T11:14:15.000Z", {}),
        "creation_time.mp4": ("2018-07-01T10:20:30.000Z", {}),
        "no_date.jpg": ("2023-03-04T05:06:07.890Z", {"lastModified": "1677906367890"}),
        "exif_offset.heic": ("2021-12-24T23:30:00.000Z", {}),
        # the epoch ffmpeg's WMV holds is no date: sent on, Immich kept 1970-01-01 (date walk)
        "epoch.wmv": ("2023-03-04T05:06:07.890Z", {"lastModified": "1677906367890"}),
        # an AVI's date is its camera's clock, here Berlin's (Immich reads none of its own)
        "local_date.avi": ("2014-03-03T02:03:03.000Z", {"tzName": "Europe/Berlin", "lastModified": "1677906367890"}),
    }
    copies = {name: unique_copy(MEDIA / name, tmp_path / name) for name in files}
    ids = {name: guest.invite_upload(copies[name], token, metadata=meta) for name, (_, meta) in files.items()}
    admin_id = peer.http.get("/users/me").json()["id"]
    for name, uid in ids.items():
        assert guest.wait_for(uid, FINAL, timeout=120)["state"] == "done", name
        asset_id = peer.asset_id(sha1(copies[name]))
        assert asset_id and real.upload_row(uid).asset_id == asset_id, name
        assert peer.created_at_settled(asset_id) == files[name][0], name
        asset = peer.asset(asset_id)
        assert asset["ownerId"] == admin_id and asset["originalFileName"] == name
        assert [a["id"] for a in peer.albums_of(asset_id)] == [invite["albumId"]], name


@pytest.mark.parametrize("large", [False, True], ids=["answered-by-the-upload", "checked-first"])
def test_the_same_photo_twice_is_one_asset_in_the_album(real, peer, tmp_path, large):
    """A small photo's duplicate is Immich's answer to the upload itself (x-immich-checksum); a large
    one's, its bulk check before anything is sent (pipeline.CHECK_FIRST_FROM)."""
    from immich_drop.pipeline import CHECK_FIRST_FROM

    _, invite = admin_invite(real, peer)
    photo = unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "twice.jpg")
    if large:  # bytes after the JPEG's end: still the same photo to Immich, now past the size
        with open(photo, "ab") as fh:
            fh.truncate(CHECK_FIRST_FROM + 1)
    first, second = real.guest(), real.guest()
    a = first.invite_upload(photo, invite_token(invite))
    assert first.wait_for(a, FINAL)["state"] == "done"
    b = second.invite_upload(photo, invite_token(invite))
    assert second.wait_for(b, FINAL)["state"] == "duplicate"
    asset_id = peer.asset_id(sha1(photo))
    assert real.upload_row(a).asset_id == real.upload_row(b).asset_id == asset_id
    assert [x["id"] for x in peer.albums_of(asset_id)] == [invite["albumId"]]


def test_a_non_admin_owners_guest_fills_that_owners_library(real, peer, tmp_path):
    owner = sign_in(real, peer.OWNER_EMAIL, peer.OWNER_PASSWORD)
    invite = owner.invite(album={"name": "Owner's drop " + tmp_path.name[-6:]})
    # The admin signs in after the owner: Immich's sign-in cookie must not make the owner's files theirs.
    sign_in(real, peer.ADMIN_EMAIL, peer.ADMIN_PASSWORD).close()
    photo = unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "owner.jpg")
    guest = real.guest()
    uid = guest.invite_upload(photo, invite_token(invite))
    assert guest.wait_for(uid, FINAL)["state"] == "done"
    as_owner = peer.session(peer.OWNER_EMAIL, peer.OWNER_PASSWORD)
    owner_id = as_owner.get("/users/me").json()["id"]
    asset_id = peer.asset_id(sha1(photo), as_owner)
    assert asset_id and peer.asset(asset_id, as_owner)["ownerId"] == owner_id
    assert peer.asset_id(sha1(photo)) is None  # not in the admin's library
    assert [a["id"] for a in peer.albums_of(asset_id, as_owner)] == [invite["albumId"]]


def test_an_album_deleted_in_immich_is_made_again(real, peer, tmp_path):
    admin, invite = admin_invite(real, peer)
    guest = real.guest()
    one = unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "one.jpg")
    two = unique_copy(MEDIA / "no_date.jpg", tmp_path / "two.jpg")
    assert guest.wait_for(guest.invite_upload(one, invite_token(invite)), FINAL)["state"] == "done"
    peer.http.delete(f"/albums/{invite['albumId']}").raise_for_status()

    uid = guest.invite_upload(two, invite_token(invite))
    assert guest.wait_for(uid, FINAL)["state"] == "done"
    [album] = peer.albums_of(peer.asset_id(sha1(two)))
    assert album["id"] != invite["albumId"] and album["albumName"] == invite["albumName"]
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["albumId"] == album["id"]


def _video(tmp_path, name: str, mib: int) -> "Path":
    """A real MP4 (with its QuickTime date) grown to `mib` MiB by a trailing `free` box of random bytes."""
    video = tmp_path / name
    pad = make_file(tmp_path / (name + ".pad"), mib * 1024 * 1024, seed=int.from_bytes(__import__("os").urandom(4), "big"))
    body = pad.read_bytes()
    video.write_bytes((MEDIA / "creation_time.mp4").read_bytes() + struct.pack(">I4s", 8 + len(body), b"free") + body)
    return video


def test_a_large_video_goes_through_the_relay(make_real_drop, peer, tmp_path):
    drop = make_real_drop(STREAM_MIN_SIZE="1MiB", CHUNK_SIZE="1MiB")
    _, invite = admin_invite(drop, peer)
    video = _video(tmp_path, "relayed.mp4", 6)
    guest = drop.guest()
    uid = guest.invite_upload(video, invite_token(invite), chunk_size=1024 * 1024)
    assert guest.wait_for(uid, FINAL, timeout=120)["state"] == "done"
    assert drop.services.pipeline.metrics.relays.labels(outcome="sent")._value.get() == 1
    asset_id = peer.asset_id(sha1(video))
    assert asset_id and drop.upload_row(uid).asset_id == asset_id
    assert peer.created_at_settled(asset_id) == "2018-07-01T10:20:30.000Z"
    assert [a["id"] for a in peer.albums_of(asset_id)] == [invite["albumId"]]


def test_a_photo_deleted_in_immich_is_sent_again_not_called_a_duplicate(real, peer, tmp_path):
    _, invite = admin_invite(real, peer)
    photo = unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "again.jpg")
    first, second = real.guest(), real.guest()
    assert first.wait_for(first.invite_upload(photo, invite_token(invite)), FINAL)["state"] == "done"
    gone = peer.asset_id(sha1(photo))
    peer.delete_assets([gone], force=True)  # deleted for good, trash emptied
    wait_until(lambda: peer.asset_id(sha1(photo)) is None, timeout=30, what="Immich to forget the asset")

    uid = second.invite_upload(photo, invite_token(invite))
    assert second.wait_for(uid, FINAL)["state"] == "done"
    asset_id = peer.asset_id(sha1(photo))
    assert asset_id and asset_id != gone and real.upload_row(uid).asset_id == asset_id
    assert [a["id"] for a in peer.albums_of(asset_id)] == [invite["albumId"]]


def test_a_duplicate_in_the_trash_is_told_to_the_owner_and_added_to_the_album(real, peer, tmp_path):
    admin, invite = admin_invite(real, peer)
    photo = unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "trashed.jpg")
    first, second = real.guest(), real.guest()
    assert first.wait_for(first.invite_upload(photo, invite_token(invite)), FINAL)["state"] == "done"
    asset_id = peer.asset_id(sha1(photo))
    peer.http.request("DELETE", f"/albums/{invite['albumId']}/assets", json={"ids": [asset_id]}).raise_for_status()
    peer.delete_assets([asset_id], force=False)  # in the trash
    assert peer.check(sha1(photo))["isTrashed"] is True

    uid = second.invite_upload(photo, invite_token(invite))
    event = second.wait_for(uid, FINAL)
    assert event["state"] == "duplicate" and event["message"] == ""
    [logged] = [e for e in admin.call("GET", f"/api/invites/{invite['id']}/uploads").json() if e["id"] == uid]
    assert "trash" in logged["message"]
    assert [a["id"] for a in peer.albums_of(asset_id)] == [invite["albumId"]]


def _minted_keys(peer) -> dict[str, str]:
    """id -> name of the keys Immich Drop made in the admin's Immich account."""
    return {k["id"]: k["name"] for k in peer.http.get("/api-keys").json() if k["name"].startswith("Immich Drop invites")}


def test_signing_in_again_reuses_the_key_and_a_revoked_key_pauses_then_resumes(real, peer, tmp_path):
    before = set(_minted_keys(peer))
    admin, invite = admin_invite(real, peer)
    sign_in(real, peer.ADMIN_EMAIL, peer.ADMIN_PASSWORD).close()
    [minted] = set(_minted_keys(peer)) - before  # one key for this server, however often the admin signs in
    # named for the server that made it, and the day (87 keys of one name could not be told apart: owner walk)
    name, prefix = _minted_keys(peer)[minted], f"Immich Drop invites · {real.url.split('://', 1)[1]} · "
    assert name.startswith(prefix), name
    assert abs(date.fromisoformat(name[len(prefix):]) - datetime.now(timezone.utc).date()) <= timedelta(days=1)

    peer.http.delete(f"/api-keys/{minted}").raise_for_status()  # revoked in Immich
    guest = real.guest()
    photo = unique_copy(MEDIA / "no_date.jpg", tmp_path / "paused.jpg")
    uid = guest.invite_upload(photo, invite_token(invite))
    assert "paused" in guest.wait_for(uid, "retrying")["message"]
    assert admin.call("GET", "/api/session").json()["keyValid"] is False
    assert real.guest().create(100, invite=invite_token(invite)).status_code == 503  # the link pauses

    sign_in(real, peer.ADMIN_EMAIL, peer.ADMIN_PASSWORD).close()
    assert guest.wait_for(uid, FINAL)["state"] == "done"
    assert peer.asset_id(sha1(photo)) == real.upload_row(uid).asset_id
    assert len(set(_minted_keys(peer)) - before) == 1


def test_albums_shared_as_viewer_are_not_offered_and_a_refused_add_is_shown(real, peer, tmp_path):
    as_owner = peer.session(peer.OWNER_EMAIL, peer.OWNER_PASSWORD)
    admin_id = peer.http.get("/users/me").json()["id"]
    suffix = tmp_path.name[-8:]
    viewer = as_owner.post("/albums", json={"albumName": f"Look only {suffix}",
                                            "albumUsers": [{"userId": admin_id, "role": "viewer"}]}).json()
    editor = as_owner.post("/albums", json={"albumName": f"Shared {suffix}",
                                            "albumUsers": [{"userId": admin_id, "role": "editor"}]}).json()
    admin = sign_in(real, peer.ADMIN_EMAIL, peer.ADMIN_PASSWORD)
    listed = {a["id"] for a in admin.call("GET", "/api/albums").json()}
    assert editor["id"] in listed and viewer["id"] not in listed
    assert admin.call("POST", "/api/invites", json={"album": {"id": viewer["id"]}}).status_code == 400

    invite = admin.invite(album={"id": editor["id"]})
    as_owner.put(f"/albums/{editor['id']}/user/{admin_id}", json={"role": "viewer"}).raise_for_status()
    guest = real.guest()
    photo = unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "view.jpg")
    uid = guest.invite_upload(photo, invite_token(invite))
    event = guest.wait_for(uid, FINAL)
    assert event["state"] == "failed" and "may only view" in event["message"]
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["albumId"] == editor["id"]  # not re-pointed
    asset_id = peer.asset_id(sha1(photo))
    assert asset_id and peer.albums_of(asset_id) == []  # in the library, in no album: as the log says


def test_an_abandoned_relay_leaves_nothing_in_immich_and_the_finished_file_arrives(make_real_drop, peer, tmp_path):
    drop = make_real_drop(STREAM_MIN_SIZE="1MiB", STREAM_STALL_SECONDS="0.5")
    _, invite = admin_invite(drop, peer)
    admin_id = peer.http.get("/users/me").json()["id"]
    video = _video(tmp_path, "abandoned.mp4", 4)
    data = video.read_bytes()
    guest = drop.guest()
    guest.http.get(f"/i/{invite_token(invite)}")
    before = set(peer.upload_files(admin_id))
    created = guest.create(len(data), "abandoned.mp4", invite=invite_token(invite))
    uid = created.headers["Location"].rsplit("/", 1)[-1]
    headers = guest.tus_headers(**{"Content-Type": "application/offset+octet-stream"})
    first = 2 * 1024 * 1024
    assert guest.http.patch(f"/api/uploads/{uid}", content=data[:first],
                            headers={**headers, "Upload-Offset": "0"}).status_code == 204
    relays = drop.services.pipeline.metrics.relays
    wait_until(lambda: relays.labels(outcome="abandoned")._value.get() == 1, what="the stalled relay to give up")
    wait_until(lambda: set(peer.upload_files(admin_id)) == before, timeout=30,
               what="Immich to remove the partial file of the abandoned request")
    assert peer.asset_id(sha1(video)) is None

    assert guest.http.patch(f"/api/uploads/{uid}", content=data[first:],
                            headers={**headers, "Upload-Offset": str(first)}).status_code == 204
    assert guest.wait_for(uid, FINAL, timeout=120)["state"] == "done"
    asset_id = peer.asset_id(sha1(video))
    assert asset_id and drop.upload_row(uid).asset_id == asset_id
    new = set(peer.upload_files(admin_id)) - before
    assert [p.stat().st_size for p in new] == [len(data)]  # one file, whole


def test_immich_stopped_then_started_again_the_file_waits_and_arrives_once(real, peer, tmp_path):
    _, invite = admin_invite(real, peer)
    token = invite_token(invite)
    photo = unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "waited.jpg")
    guest = real.guest()
    subprocess.run([str(ROOT / "stop.sh")], check=True, capture_output=True)
    try:
        uid = guest.invite_upload(photo, token)
        assert "Waiting for the server" in guest.wait_for(uid, "retrying")["message"]
        assert real.services.storage.data_path(uid).exists()
    finally:
        subprocess.run([str(ROOT / "start.sh")], check=True, capture_output=True)
    assert guest.wait_for(uid, FINAL, timeout=180)["state"] == "done"
    asset_id = peer.asset_id(sha1(photo))
    assert asset_id and real.upload_row(uid).asset_id == asset_id
    assert [a["id"] for a in peer.albums_of(asset_id)] == [invite["albumId"]]
    assert not real.services.storage.data_path(uid).exists()


def test_the_guests_name_and_message_become_the_description_with_no_more_permissions(real, peer, tmp_path):
    """Sent as an XMP sidecar in the upload itself: Immich reads it into the description, and the
    minted key needs only asset.upload for it (no asset.update, no second request)."""
    before = set(_minted_keys(peer))
    _, invite = admin_invite(real, peer)
    photo = unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "from-anna.jpg")
    guest = real.guest()
    uid = guest.invite_upload(photo, invite_token(invite),
                              metadata={"guestName": "Anna <&> \"B\"", "guestMessage": "See you soon! ]]>"})
    assert guest.wait_for(uid, FINAL)["state"] == "done"
    asset_id = peer.asset_id(sha1(photo))
    peer.created_at_settled(asset_id)
    wait_until(lambda: peer.asset(asset_id)["exifInfo"].get("description"), timeout=30, what="the description")
    assert peer.asset(asset_id)["exifInfo"]["description"] == "From Anna <&> \"B\": See you soon! ]]>"
    assert peer.created_at_settled(asset_id) == "2019-05-04T11:14:15.000Z"  # the file's own date still counts
    [minted] = [k for k in peer.http.get("/api-keys").json() if k["id"] in set(_minted_keys(peer)) - before]
    assert sorted(minted["permissions"]) == ["album.create", "album.read", "albumAsset.create", "asset.upload"]


def test_readiness_passes_with_a_good_key_and_names_a_refused_one(make_real_drop):
    """`/readyz` asks Immich with the configured key. Immich v3.1.0 answers an empty bulk check with
    a 500, so readiness asked that way was never "ready" against a real Immich."""
    ready = httpx.get(make_real_drop().url + "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "staging": "ok", "immich": "ok"}
    refused = httpx.get(make_real_drop(IMMICH_API_KEY="not-a-key").url + "/readyz")
    assert refused.status_code == 503 and refused.json()["checks"]["immich"] == "error: Invalid API key"


@pytest.mark.parametrize("name", ["notes.jpg", "notes.nef", "notes.mts"])
def test_a_text_file_named_as_a_photo_never_reaches_immich(real, peer, tmp_path, name):
    """Immich v3.1.0 takes any bytes named .jpg (or as a RAW or a camcorder's video) as an image or
    video (an asset with no thumbnail in the owner's album); the first PATCH is refused, and Immich
    holds nothing of it."""
    notes = tmp_path / name
    notes.write_bytes(b"Shopping list: bread, milk, " + os.urandom(8).hex().encode())
    guest = real.guest()
    uid = guest.create(notes.stat().st_size, name).headers["Location"].rsplit("/", 1)[-1]
    refused = guest.http.patch(f"/api/uploads/{uid}", content=notes.read_bytes(), headers=guest.tus_headers(**{
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}))
    assert refused.status_code == 415 and refused.json()["code"] == "not_media"
    assert real.upload_row(uid) is None and peer.asset_id(sha1(notes)) is None


def test_an_svg_drawing_is_not_taken_though_immich_takes_it(real, peer):
    """Immich v3.1.0 lists .svg among its image types and serves the original as it came, inline,
    `<script>` and all. A guest's SVG is refused before a byte (the page's list leaves it out too)."""
    assert ".svg" in peer.http.get("/server/media-types").json()["image"]
    guest = real.guest()
    assert ".svg" not in guest.http.get("/api/config").json()["extensions"]
    assert ".jpg" in guest.http.get("/api/config").json()["extensions"]
    refused = guest.create(200, "drawing.svg")
    assert refused.status_code == 415 and refused.json()["code"] == "type_not_accepted"
    assert refused.json()["params"] == {"ext": ".svg"}
