"""Delivery to Immich end to end: real tus uploads in chunks, the fake Immich behind real HTTP."""

import asyncio
import shutil
import time
import uuid

from conftest import MEDIA, ServerThread, invite_token, make_file, sha1_of

CHUNK = 256 * 1024


def test_photos_and_video_arrive_byte_identical_dated_and_in_the_album(make_drop, tmp_path):
    drop = make_drop(CHUNK_SIZE=str(CHUNK))
    guest = drop.guest()
    big_video = make_file(tmp_path / "party.mov", 3 * CHUNK + 17, seed=11)
    files = {
        "exif_offset.jpg": ("2019-05-04T13:14:15.000+02:00", {}),
        "exif_offset.heic": ("2021-12-24T18:30:00.000-05:00", {}),
        "exif_no_offset.jpg": ("2020-02-29T08:00:00.000+01:00", {"tz": "60"}),  # the guest's phone is at +01:00
        "creation_time.mp4": ("2018-07-01T10:20:30.000Z", {}),
        "no_date.jpg": ("2023-03-04T05:06:07.890Z", {"lastModified": "1677906367890"}),
    }
    ids = {}
    for name, (_, meta) in files.items():
        ids[name] = guest.upload(MEDIA / name, chunk_size=CHUNK, metadata=meta)
    ids["party.mov"] = guest.upload(big_video, chunk_size=CHUNK)
    for uid in ids.values():
        assert guest.wait_for(uid, ["done", "failed", "duplicate"])["state"] == "done"

    received = {r.filename: r for r in drop.fake.uploads}
    assert set(received) == set(ids)
    for name, (created, _) in files.items():
        assert received[name].sha1 == sha1_of(MEDIA / name)
        assert received[name].file_created_at == created, name
    assert received["party.mov"].sha1 == sha1_of(big_video)
    for r in received.values():
        assert r.field_order.index("filename") < r.field_order.index("assetData")
        assert r.owner == drop.fake.owner_of(drop.key)
    [album] = drop.fake.albums_named(drop.fake.owner_of(drop.key), "Guests")
    assert sorted(album.assets) == sorted(r.asset_id for r in received.values())
    # Delivered files leave the staging area, with their info and lock files.
    assert drop.server.call(drop.services.storage.list_uids()) == []
    assert list(drop.services.storage.directory.glob("*.info")) == []


def test_receive_time_is_the_last_resort_date(drop):
    guest = drop.guest()
    uid = guest.upload(MEDIA / "no_date.jpg")
    guest.wait_for(uid, "done")
    row = drop.upload_row(uid)
    sent = drop.fake.uploads[0].file_created_at
    assert sent.endswith("Z") and sent[:19] == row.received_at.strftime("%Y-%m-%dT%H:%M:%S")


def test_duplicates_are_reported_and_still_added_to_the_album(drop):
    first, second = drop.guest(), drop.guest()
    a = first.upload(MEDIA / "exif_offset.jpg")
    assert first.wait_for(a, ["done", "failed"])["state"] == "done"
    b = second.upload(MEDIA / "exif_offset.jpg")  # local cache hit
    assert second.wait_for(b, ["duplicate", "done", "failed"])["state"] == "duplicate"
    assert len(drop.fake.uploads) == 1

    # Known to Immich but not to our cache (e.g. uploaded from the phone app): the bulk check finds it.
    owner = drop.fake.owner_of(drop.key)
    from_the_app = str(uuid.uuid4())
    drop.fake.assets[owner][sha1_of(MEDIA / "exif_no_offset.jpg")] = from_the_app
    drop.fake.assets[owner]["0" * 40] = str(uuid.uuid4())
    c = first.upload(MEDIA / "exif_no_offset.jpg")
    assert first.wait_for(c, ["duplicate", "done", "failed"])["state"] == "duplicate"
    assert drop.upload_row(c).asset_id == from_the_app
    [album] = drop.fake.albums_named(owner, "Guests")
    assert from_the_app in album.assets and drop.upload_row(b).asset_id in album.assets
    assert len(drop.fake.uploads) == 1


def test_a_small_file_is_sent_at_once_and_a_large_one_is_asked_about_first(drop, tmp_path):
    """Below CHECK_FIRST_FROM, Immich's answer to the upload itself (x-immich-checksum) decides
    about duplicates: no bulk check per file. From it on, a duplicate's bytes are not sent at all."""
    from immich_drop.pipeline import CHECK_FIRST_FROM

    guest = drop.guest()
    assert guest.wait_for(guest.upload(MEDIA / "exif_offset.jpg"), ["done", "failed"])["state"] == "done"
    assert ("POST", "/api/assets/bulk-upload-check") not in drop.fake.requests
    assert drop.fake.uploads[0].checksum_header == sha1_of(MEDIA / "exif_offset.jpg")

    large = make_file(tmp_path / "panorama.jpg", CHECK_FIRST_FROM, seed=5)
    owner = drop.fake.owner_of(drop.key)
    drop.fake.assets[owner][sha1_of(large)] = from_the_app = str(uuid.uuid4())
    uid = guest.upload(large, chunk_size=8 * 1024 * 1024)
    assert guest.wait_for(uid, ["duplicate", "done", "failed"])["state"] == "duplicate"
    assert drop.upload_row(uid).asset_id == from_the_app
    assert ("POST", "/api/assets/bulk-upload-check") in drop.fake.requests
    assert drop.fake.requests.count(("POST", "/api/assets")) == 1  # the photo above; not the panorama


def test_duplicates_are_per_owner(make_drop, fake):
    one = make_drop()
    guest = one.guest()
    guest.wait_for(guest.upload(MEDIA / "exif_offset.jpg"), "done")
    one.server.stop()
    other = make_drop(key=fake.add_user())  # another Immich user, same data dir and cache
    guest = other.guest()
    assert guest.wait_for(guest.upload(MEDIA / "exif_offset.jpg"), ["done", "duplicate"])["state"] == "done"
    assert len({r.owner for r in fake.uploads}) == 2


def test_immich_down_then_back(drop):
    guest = drop.guest()
    drop.fake.fail_status = 503
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    event = guest.wait_for(uid, "retrying")
    assert "Waiting for the server" in event["message"]
    assert drop.services.storage.data_path(uid).exists()  # kept while Immich is away
    drop.fake.fail_status = None
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert drop.fake.uploads[0].sha1 == sha1_of(MEDIA / "exif_offset.jpg")


def test_immich_gone_entirely_then_back(drop):
    guest = drop.guest()
    fake_server = drop.fake.server
    fake_server.stop(close_socket=True)  # connection refused from now on
    uid = guest.upload(MEDIA / "exif_offset.jpg")  # media types fall back to the built-in list
    assert "unreachable" in guest.wait_for(uid, "retrying")["message"]
    revived = ServerThread(drop.fake, sock=_listen_on(fake_server.port))
    try:
        assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    finally:
        revived.stop()


def test_a_photo_immich_has_sent_while_immich_is_down_is_still_already_there(drop):
    """The first attempt marks the upload as sent before its request; a 503 (or no connection at all)
    means nothing reached Immich, so the mark is taken back and Immich's "duplicate" afterwards is the
    guest's answer, not this upload's own asset come back as "done"."""
    owner = drop.fake.owner_of(drop.key)
    drop.fake.assets.setdefault(owner, {})[sha1_of(MEDIA / "exif_offset.jpg")] = from_the_app = str(uuid.uuid4())
    guest = drop.guest()
    drop.fake.fail_status = 503
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(uid, "retrying")
    assert drop.upload_row(uid).sent_at is None
    drop.fake.fail_status = None
    assert guest.wait_for(uid, ["duplicate", "done", "failed"])["state"] == "duplicate"
    assert drop.upload_row(uid).asset_id == from_the_app and drop.fake.uploads == []


def test_an_upload_unanswered_in_time_stays_marked_as_maybe_sent(make_drop):
    """A request that may have reached Immich (here: Immich stored the file, and its answer came after
    the client's timeout) keeps the mark: the retry's "duplicate" is this upload's own asset, "done"."""
    drop = make_drop(IMMICH_TIMEOUT_SECONDS="1")
    guest = drop.guest()
    gate = drop.fake.answer_gate = asyncio.Event()
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    assert "in time" in guest.wait_for(uid, "retrying")["message"]
    assert drop.upload_row(uid).sent_at is not None
    drop.fake.answer_gate = None
    drop.fake.server.loop.call_soon_threadsafe(gate.set)
    assert guest.wait_for(uid, ["duplicate", "done", "failed"])["state"] == "done"
    assert len(drop.fake.uploads) == 1


def _listen_on(port):
    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def test_immich_refusal_fails_with_its_message(drop):
    guest = drop.guest()
    drop.fake.upload_refusal = "Quota has been exceeded!"
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    event = guest.wait_for(uid, ["failed", "done"])
    assert event["state"] == "failed" and event["message"] == "Quota has been exceeded!"
    assert drop.services.storage.data_path(uid).exists()  # nothing deleted without Immich's confirmation


def test_revoked_server_key_waits_instead_of_failing(drop):
    guest = drop.guest()
    drop.fake.revoke(drop.key)
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    assert "refused the server's key" in guest.wait_for(uid, "retrying")["message"]
    owner_perms = ("asset.upload", "album.read", "album.create", "albumAsset.create")
    drop.fake.keys[drop.key] = ("user-restored", set(owner_perms))
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"


def test_album_deleted_in_immich_is_created_again(drop):
    guest = drop.guest()
    guest.wait_for(guest.upload(MEDIA / "exif_offset.jpg"), "done")
    owner = drop.fake.owner_of(drop.key)
    [album] = drop.fake.albums_named(owner, "Guests")
    drop.fake.delete_album(album.id)
    uid = guest.upload(MEDIA / "exif_no_offset.jpg")
    guest.wait_for(uid, "done")
    [again] = drop.fake.albums_named(owner, "Guests")
    assert again.id != album.id and again.assets == [drop.upload_row(uid).asset_id]


def test_last_patch_returns_before_delivery(drop):
    guest = drop.guest()
    gate = drop.fake.upload_gate = asyncio.Event()
    guest.watch()
    uid = guest.upload(MEDIA / "exif_offset.jpg")  # returns although Immich holds the upload
    assert guest.wait_for(uid, "uploading")
    assert drop.fake.uploads == []
    drop.fake.server.loop.call_soon_threadsafe(gate.set)
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"


def test_restart_picks_up_undelivered_uploads(make_drop, tmp_path):
    drop = make_drop()
    guest = drop.guest()
    drop.fake.fail_status = 503
    waiting = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(waiting, "retrying")
    # A second upload whose last byte landed but whose "received" mark did not (killed in between).
    uid = guest.create(MEDIA.joinpath("exif_no_offset.jpg").stat().st_size, "exif_no_offset.jpg")
    uid = uid.headers["Location"].rsplit("/", 1)[-1]
    shutil.copyfile(MEDIA / "exif_no_offset.jpg", drop.services.storage.data_path(uid))
    again = drop.restart().guest(session=guest.session)
    drop.fake.fail_status = None  # Immich comes back only after the restart
    assert again.wait_for(waiting, ["done", "failed"])["state"] == "done"
    assert again.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert sorted(r.filename for r in drop.fake.uploads) == ["exif_no_offset.jpg", "exif_offset.jpg"]


def test_janitor_removes_idle_incomplete_uploads_only(drop):
    guest = drop.guest()
    storage, pipeline = drop.services.storage, drop.services.pipeline
    idle = guest.create(100).headers["Location"].rsplit("/", 1)[-1]
    held = drop.server.call(storage.locks.try_acquire(idle))
    drop.server.call(held.release())  # a PATCH came and went: its lock file stays behind
    assert storage.locks.path(idle).exists()
    orphan = storage.directory / ("f" * 32)
    orphan.write_bytes(b"left by a crash before its row was written")
    drop.fake.fail_status = 503
    waiting = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(waiting, "retrying")

    now = time.time()
    assert drop.server.call(pipeline.sweep(now=now + 60)) == 0  # nothing is idle yet
    busy = drop.server.call(storage.locks.try_acquire(idle))
    assert drop.server.call(pipeline.sweep(now=now + 25 * 3600)) == 1  # only the orphan: idle is being written
    drop.server.call(busy.release())
    assert drop.server.call(pipeline.sweep(now=now + 25 * 3600)) == 1
    assert not storage.data_path(idle).exists() and not storage.info_path(idle).exists()
    assert not storage.locks.path(idle).exists() and not orphan.exists()
    assert drop.upload_row(idle).state == "failed"
    assert storage.data_path(waiting).exists()  # received, waiting for Immich: never dropped for age


def test_janitor_ends_a_receiving_row_whose_files_are_gone(make_drop, admin_of):
    """Attack run: after a kill -9 between a creation's row and its staged files, the row stayed
    "receiving" for good (the janitor walked staged files only), holding 14 of a 20-file link's
    places. Once it is old enough that no creation can still be making its files, it ends and its
    place goes back; a new one's row is left to its creation."""
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = admin_of(drop)
    invite = admin.invite(maxFiles=2)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    uids = [guest.create(100, invite=token).headers["Location"].rsplit("/", 1)[-1] for _ in range(2)]
    storage = drop.services.storage
    for uid in uids:  # as a kill -9 leaves it: the row, and no file
        storage.data_path(uid).unlink()
        storage.info_path(uid).unlink()
        storage.forget(uid)
    assert guest.create(100, invite=token).status_code == 403  # the link is full
    now = time.time()
    assert drop.server.call(drop.services.pipeline.sweep(now=now + 60)) == 0  # a creation may still be making them
    assert drop.server.call(drop.services.pipeline.sweep(now=now + 601)) == 2
    assert [drop.upload_row(uid).state for uid in uids] == ["failed", "failed"]
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["files"] == 0
    assert guest.create(100, invite=token).status_code == 201


def test_janitor_removes_files_left_by_a_delivered_upload(drop):
    guest = drop.guest()
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(uid, "done")
    leftover = drop.services.storage.data_path(uid)
    assert not leftover.exists()
    leftover.write_bytes(b"killed between Immich's confirmation and the delete")
    assert drop.server.call(drop.services.pipeline.sweep()) == 1  # at once, not after the expiry
    assert not leftover.exists()


def test_at_most_max_concurrent_deliveries(make_drop):
    drop = make_drop(MAX_CONCURRENT="2")
    guest = drop.guest()
    gate = drop.fake.upload_gate = asyncio.Event()
    names = ["exif_offset.jpg", "exif_no_offset.jpg", "no_date.jpg", "creation_time.mp4"]
    ids = [guest.upload(MEDIA / name) for name in names]
    first_two = [guest.wait_for(uid, "uploading") for uid in ids[:2]]
    # The other two stay queued while both workers are held by Immich.
    rows = [drop.upload_row(uid) for uid in ids]
    assert [r.state for r in rows].count("uploading") == 2 and [r.state for r in rows].count("received") == 2
    assert drop.fake.waiting_at_gate == 2 and len(first_two) == 2
    drop.fake.server.loop.call_soon_threadsafe(gate.set)
    for uid in ids:
        assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert len(drop.fake.uploads) == 4


def test_restart_during_delivery_delivers_once(make_drop):
    drop = make_drop()
    guest = drop.guest()
    gate = drop.fake.upload_gate = asyncio.Event()
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(uid, "uploading")
    drop.fake.upload_gate = None
    drop.restart()  # the worker dies mid-request; the row still says "uploading"
    drop.fake.server.loop.call_soon_threadsafe(gate.set)  # let the abandoned request end
    again = drop.guest(session=guest.session)
    # The abandoned request created the asset; the next attempt hears "duplicate" for it, and knows
    # (sent_at) that it is this upload's own: the guest sees "done", never "duplicate" for a first upload.
    assert again.wait_for(uid, ["done", "duplicate", "failed"])["state"] == "done"
    owner = drop.fake.owner_of(drop.key)
    assert list(drop.fake.assets[owner].values()) == [drop.upload_row(uid).asset_id]
    [album] = drop.fake.albums_named(owner, "Guests")
    assert len(album.assets) == 1
