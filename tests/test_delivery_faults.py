"""Delivery when things go wrong around it: a stale duplicate cache, a trashed duplicate, a lost lease,
a staged file that vanished, a link deleted mid-delivery, retries, the guest's time zone.

The fake Immich, for faults the real one cannot be made to show on demand; what the real one decides
is in test_real_immich.py. Each test failed before the fix it names.
"""

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from conftest import MEDIA, invite_token, sha1_of, wait_until
from immich_drop import pipeline as pipeline_module
from immich_drop import store as store_module
from immich_drop.pipeline import MAX_SERVER_ERRORS

FINAL = ["done", "duplicate", "failed"]


def _metric(drop, outcome: str) -> float:
    return drop.services.pipeline.metrics.deliveries.labels(outcome=outcome)._value.get()


def test_a_cache_hit_for_an_asset_deleted_in_immich_sends_the_file_again(drop):
    first, second = drop.guest(), drop.guest()
    a = first.upload(MEDIA / "exif_offset.jpg")
    assert first.wait_for(a, FINAL)["state"] == "done"
    drop.fake.delete_asset(drop.upload_row(a).asset_id)  # the owner deleted it in Immich (trash emptied)

    b = second.upload(MEDIA / "exif_offset.jpg")
    assert second.wait_for(b, FINAL)["state"] == "done"
    assert drop.fake.upload_bodies == 2  # sent again, not "already there" on the cache's word
    owner = drop.fake.owner_of(drop.key)
    assert drop.fake.assets[owner] == {sha1_of(MEDIA / "exif_offset.jpg"): drop.upload_row(b).asset_id}
    [album] = drop.fake.albums_named(owner, "Guests")
    assert album.assets == [drop.upload_row(b).asset_id]


def test_a_duplicate_in_the_owners_trash_is_reported_to_the_owner_and_added_to_the_album(drop):
    first, second = drop.guest(), drop.guest()
    a = first.upload(MEDIA / "exif_offset.jpg")
    assert first.wait_for(a, FINAL)["state"] == "done"
    asset_id = drop.upload_row(a).asset_id
    owner = drop.fake.owner_of(drop.key)
    [album] = drop.fake.albums_named(owner, "Guests")
    album.assets.clear()  # the owner also took it out of the album
    drop.fake.trash(asset_id)

    b = second.upload(MEDIA / "exif_offset.jpg")
    event = second.wait_for(b, FINAL)
    assert event["state"] == "duplicate" and event["message"] == ""  # the guest hears "already there"
    row = drop.upload_row(b)
    assert row.asset_id == asset_id and "trash" in row.message  # the owner's log says where it is
    assert album.assets == [asset_id]
    assert drop.fake.upload_bodies == 1


def test_a_lost_lease_stops_the_delivery_and_the_file_reaches_immich_once(drop):
    pipeline = drop.services.pipeline
    # A lease long enough that a loaded machine's late renewal does not lose it by itself (renewed every 1 s).
    pipeline.lease_seconds, pipeline.scan_seconds = 3.0, 0.05
    gate = drop.fake.upload_gate = asyncio.Event()
    guest = drop.guest()
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(uid, "uploading")
    wait_until(lambda: drop.fake.waiting_at_gate == 1, what="Immich holding the upload")
    # Another process takes the delivery over (as if our renewals had stopped reaching the database).
    drop.server.call(drop.services.store.update_upload(uid, lease_owner="another-process"))
    wait_until(lambda: _metric(drop, "lost") == 1, what="the attempt to notice its lease is gone")
    assert drop.upload_row(uid).lease_owner == "another-process"  # this process took nothing back
    drop.fake.server.loop.call_soon_threadsafe(gate.set)
    wait_until(lambda: drop.fake.upload_aborts >= 1, what="Immich to see the abandoned request end")
    assert drop.fake.upload_bodies == 0 and drop.upload_row(uid).state == "uploading"
    assert drop.services.storage.data_path(uid).exists()  # nothing deleted by the process that lost it

    # The other process dies in turn: its lease runs out and this one delivers, once.
    drop.fake.upload_gate = None
    drop.server.call(drop.services.store.update_upload(uid, lease_owner="another-process", lease_until=None))
    assert guest.wait_for(uid, ["done", "duplicate", "failed"])["state"] == "done"
    assert drop.fake.upload_bodies == 1


def test_a_lease_renewal_that_fails_stops_the_delivery(drop, monkeypatch):
    pipeline, store = drop.services.pipeline, drop.services.store
    pipeline.lease_seconds, pipeline.scan_seconds = 3.0, 0.05
    gate = drop.fake.upload_gate = asyncio.Event()
    renew = store.renew_lease

    async def unreachable(*args):
        if not drop.fake.waiting_at_gate:  # not before Immich holds the request: the stop must cut one
            return await renew(*args)
        raise OSError("database unreachable")

    monkeypatch.setattr(store, "renew_lease", unreachable)
    guest = drop.guest()
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(uid, "uploading")
    wait_until(lambda: _metric(drop, "lost") >= 1, what="the attempt to stop without a renewed lease")
    drop.fake.server.loop.call_soon_threadsafe(gate.set)
    wait_until(lambda: drop.fake.upload_aborts >= 1, what="Immich to see the abandoned request end")
    monkeypatch.setattr(store, "renew_lease", renew)  # the database is back; the lease runs out and
    drop.fake.upload_gate = None                      # the delivery is taken up again, and made once
    assert guest.wait_for(uid, FINAL)["state"] == "done" and drop.fake.upload_bodies == 1


def test_a_file_immich_keeps_failing_on_fails_after_a_few_attempts(drop):
    # Immich answered 500 to every attempt at a file it could not take: it was sent again every five
    # minutes for good, holding its staging space (attack run). A 503 (Immich restarting) still waits.
    guest = drop.guest()
    drop.fake.fail_status = 500
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    event = guest.wait_for(uid, "failed")
    assert drop.upload_row(uid).attempts == MAX_SERVER_ERRORS - 1 and event["code"] == "rejected"
    assert f"failed on this file {MAX_SERVER_ERRORS} times" in event["message"]
    drop.fake.fail_status = 503
    waiting = guest.upload(MEDIA / "no_date.jpg")
    wait_until(lambda: drop.upload_row(waiting).attempts > MAX_SERVER_ERRORS, what="many attempts")
    assert drop.upload_row(waiting).state in ("retrying", "uploading", "hashing")


def test_a_worker_that_lost_its_lease_cannot_record_an_outcome(drop):
    store = drop.services.store
    guest = drop.guest()
    drop.fake.fail_status = 503
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(uid, "retrying")
    drop.server.call(store.update_upload(uid, state="uploading", lease_owner="b"))
    assert drop.server.call(store.update_upload(uid, held_by="a", state="done")) is None
    assert drop.upload_row(uid).state == "uploading"
    assert drop.server.call(store.update_upload(uid, held_by="b", state="done")).state == "done"


def test_a_staged_file_that_vanished_fails_visibly_instead_of_being_claimed_forever(drop):
    guest = drop.guest()
    drop.fake.fail_status = 503
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(uid, "retrying")
    path = drop.services.storage.data_path(uid)
    path.unlink()
    path.mkdir()  # not a readable file, whoever the server runs as (root reads any plain file)
    drop.fake.fail_status = None
    event = guest.wait_for(uid, ["done", "failed"])
    assert event["state"] == "failed" and "could not read the received file" in event["message"]
    assert drop.upload_row(uid).lease_owner is None


async def _a_bug(upload, rows=None):
    """Stands for `Targets.delivery`: a delivery that fails on a bug of ours."""
    raise RuntimeError("a bug")


def test_an_unexpected_error_is_retried_a_bounded_number_of_times_then_shown(drop):
    pipeline = drop.services.pipeline
    pipeline.targets.delivery = _a_bug
    guest = drop.guest()
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    event = guest.wait_for(uid, ["done", "failed"])
    assert event["state"] == "failed" and "RuntimeError" in event["message"]
    assert drop.upload_row(uid).attempts == pipeline_module.MAX_UNEXPECTED - 1


def test_deleting_a_link_during_its_delivery_never_turns_failed_into_done(make_drop, admin_of):
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = admin_of(drop)
    invite = admin.invite(album={"name": "Party"})
    gate = drop.fake.upload_gate = asyncio.Event()
    guest = drop.guest()
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(invite))
    guest.wait_for(uid, "uploading")
    wait_until(lambda: drop.fake.waiting_at_gate == 1, what="Immich holding the upload")
    assert admin.call("DELETE", f"/api/invites/{invite['id']}").status_code == 204
    event = guest.wait_for(uid, "failed")
    assert "may have arrived" in event["message"]
    drop.fake.server.loop.call_soon_threadsafe(gate.set)
    wait_until(lambda: drop.fake.upload_aborts == 1, what="the stopped request to end")
    assert drop.upload_row(uid).state == "failed" and drop.fake.upload_bodies == 0
    assert not drop.services.storage.data_path(uid).exists()


def test_a_retry_does_not_read_the_file_again(drop, monkeypatch):
    reads = []
    monkeypatch.setattr(pipeline_module, "sha1_file", lambda path: reads.append(path) or sha1_of(path))
    guest = drop.guest()
    drop.fake.fail_status = 503
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(uid, "retrying")
    assert drop.upload_row(uid).checksum == sha1_of(MEDIA / "exif_offset.jpg")  # kept from the first attempt
    drop.fake.fail_status = None
    assert guest.wait_for(uid, FINAL)["state"] == "done"
    assert reads == []  # the SHA-1 computed while receiving served every attempt


def test_the_lastmodified_fallback_uses_the_offset_in_force_at_that_date(drop):
    guest = drop.guest()
    summer = "1688212800000"  # 2023-07-01T12:00:00Z; Berlin was at +02:00 then, whatever today's offset
    uid = guest.upload(MEDIA / "no_date.jpg", metadata={"lastModified": summer, "tz": "60", "tzName": "Europe/Berlin"})
    assert guest.wait_for(uid, FINAL)["state"] == "done"
    assert drop.fake.uploads[0].file_created_at == "2023-07-01T14:00:00.000+02:00"


def test_an_exif_time_without_offset_takes_the_offset_of_its_own_date(drop):
    guest = drop.guest()  # exif_no_offset.jpg says 2020-02-29 08:00:00: winter in New York (-05:00)
    uid = guest.upload(MEDIA / "exif_no_offset.jpg", metadata={"tz": "-240", "tzName": "America/New_York"})
    assert guest.wait_for(uid, FINAL)["state"] == "done"
    assert drop.fake.uploads[0].file_created_at == "2020-02-29T08:00:00.000-05:00"


def test_one_key_per_admin_reused_while_it_works_and_the_replaced_one_removed(drop, fake, admin_of):
    user_id = fake.add_account("kim@example.org", "pw")
    from conftest import Admin

    for _ in range(3):
        with Admin(drop.url) as admin:
            assert admin.login(email="kim@example.org", password="pw").status_code == 200
    [key_id] = fake.owned_keys(user_id)
    secret = fake.key_ids[key_id]
    fake.keys[secret] = (user_id, {"asset.upload"})  # its permissions cut in Immich: no longer enough
    with Admin(drop.url) as admin:
        assert admin.login(email="kim@example.org", password="pw").status_code == 200
    [new_id] = fake.owned_keys(user_id)
    assert new_id != key_id and secret not in fake.keys  # replaced, and the old one removed from Immich


def test_albums_shared_as_viewer_are_not_offered_and_a_refused_add_is_shown(make_drop, fake, admin_of):
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = admin_of(drop)
    me = [u for u, user in fake.users.items() if user["email"] == "ada@example.org"][0]
    friend = fake.add_user()
    friends = fake.owner_of(friend)
    viewer = fake.albums[_album(fake, friends, "Look only")]
    editor = fake.albums[_album(fake, friends, "Shared with me")]
    fake.share_album(viewer.id, me, "viewer")
    fake.share_album(editor.id, me, "editor")
    listed = {a["albumName"] for a in admin.call("GET", "/api/albums").json()}
    assert "Shared with me" in listed and "Look only" not in listed
    refused = admin.call("POST", "/api/invites", json={"album": {"id": viewer.id}})
    assert refused.status_code == 400

    invite = admin.invite(album={"id": editor.id})
    fake.share_album(editor.id, me, "viewer")  # the album's owner makes us a viewer after all
    guest = drop.guest()
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(invite))
    event = guest.wait_for(uid, FINAL)
    assert event["state"] == "failed" and "may only view" in event["message"]
    assert event["code"] == "album_refused"  # the guest reads that it arrived, not "not accepted" (re-walk)
    assert len(fake.albums) == 2 and admin.call("GET", f"/api/invites/{invite['id']}").json()["albumId"] == editor.id


def _album(fake, owner: str, name: str) -> str:
    from fake_immich import Album

    album = Album(str(uuid.uuid4()), owner, name)
    fake.albums[album.id] = album
    return album.id


def test_an_admin_signing_in_never_turns_another_owners_uploads_into_theirs(make_drop, fake, admin_of):
    """Immich's sign-in sets a session cookie, and Immich prefers a session to an API key: a client that
    kept it would send every owner's files as the last admin who signed in."""
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    bea = admin_of(drop, "bea@example.org")
    invite = bea.invite(album={"name": "Bea's"})
    admin_of(drop, "cal@example.org")  # another admin signs in after Bea
    guest = drop.guest()
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(invite))
    assert guest.wait_for(uid, FINAL)["state"] == "done"
    bea_id = [u for u, user in fake.users.items() if user["email"] == "bea@example.org"][0]
    assert [r.owner for r in fake.uploads] == [bea_id]


def _hold_before_sending(drop):
    """Stop the next delivery attempt of this server where it looks up where the file goes (after its
    claim, before a byte goes to Immich); returns a threading.Event set once an attempt waits there."""
    import threading

    pipeline, waiting = drop.services.pipeline, threading.Event()

    async def held(upload, rows=None):
        waiting.set()
        await asyncio.Event().wait()  # until the attempt is cancelled

    pipeline.targets.delivery = held
    return waiting


def test_a_delivery_stopped_before_its_first_byte_takes_back_its_sending_mark(make_drop):
    """The claim marks a photo as being sent (so a "duplicate" after a crash mid-request is known as
    its own). Stopped before sending, here by a server restart, the attempt takes the mark back: the
    next one's "duplicate" is the guest's answer (the owner has the photo), not "done"."""
    drop = make_drop()
    photo = MEDIA / "exif_offset.jpg"
    owner = drop.fake.owner_of(drop.key)
    drop.fake.assets.setdefault(owner, {})[sha1_of(photo)] = from_the_app = str(uuid.uuid4())
    waiting = _hold_before_sending(drop)
    guest = drop.guest()
    uid = guest.upload(photo)
    assert waiting.wait(10)
    assert drop.upload_row(uid).sent_at is not None  # marked by its claim
    drop.server.stop()
    _assert_given_back(drop, uid)
    drop.restart()
    again = drop.guest(session=guest.session)
    assert again.wait_for(uid, FINAL)["state"] == "duplicate"
    assert drop.upload_row(uid).asset_id == from_the_app and drop.fake.uploads == []


def test_a_link_deleted_before_its_file_was_sent_says_it_was_not_sent(drop, admin_of):
    """The claim's mark alone (nothing sent yet) must not make the guest read "it may have arrived"."""
    admin = admin_of(drop)
    invite = admin.invite(album={"name": "Party"})
    waiting = _hold_before_sending(drop)
    guest = drop.guest()
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(invite))
    assert waiting.wait(10)
    assert drop.upload_row(uid).state == "uploading"  # marked by its claim
    assert admin.call("DELETE", f"/api/invites/{invite['id']}").status_code == 204
    message = guest.wait_for(uid, "failed")["message"]
    assert "not sent" in message and "may have arrived" not in message
    assert drop.fake.uploads == []


def test_failed_attempts_give_their_delivery_slot_back(make_drop):
    """With one delivery slot, attempts that end in a bug, then a cancelled one, must each give the
    slot back: a file sent afterwards is still delivered."""
    drop = make_drop(MAX_CONCURRENT="1")
    pipeline = drop.services.pipeline
    real = pipeline.targets.delivery
    pipeline.targets.delivery = _a_bug
    guest = drop.guest()
    failed = guest.upload(MEDIA / "exif_offset.jpg")
    assert guest.wait_for(failed, FINAL)["state"] == "failed"
    waiting = _hold_before_sending(drop)
    held = guest.upload(MEDIA / "no_date.jpg")
    assert waiting.wait(10)
    drop.server.call(pipeline.drop(held, "dropped by the test"))  # its attempt cancelled, as a deleted link does
    pipeline.targets.delivery = real
    later = guest.upload(MEDIA / "exif_no_offset.jpg")
    assert guest.wait_for(later, FINAL)["state"] == "done"


def _assert_given_back(drop, uid):
    """With the server stopped: the upload is free for the next process at once, and neither
    "uploading" nor marked as sent (its claim's mark taken back: nothing went)."""
    from immich_drop.models import utcnow

    row = asyncio.run(drop.services.store.get_upload(uid))
    assert row.lease_owner is None and row.lease_until <= utcnow().replace(tzinfo=row.lease_until.tzinfo)
    assert (row.state, row.sent_at) == ("hashing", None)


def _stopping(drop):
    """A threading.Event set once this server's pipeline begins to stop."""
    import threading

    pipeline, stopping = drop.services.pipeline, threading.Event()
    stop = pipeline.stop

    async def stop_and_tell():
        stopping.set()
        await stop()

    pipeline.stop = stop_and_tell
    return stopping


@pytest.mark.parametrize("held", ["before its commit", "after its commit"])
def test_a_claim_still_running_when_the_server_stops_gives_its_upload_back(make_drop, monkeypatch, held):
    """Stopping cancels a worker whose claim is still in its thread; the claim commits all the same
    (the lease taken, the photo marked as being sent), before or after the shutdown gives this
    process's leases back. What it took must go back before the server stops: the next server
    delivers the file at once, not after the minute a lease runs (CI saw one time out), and as
    "duplicate" (the owner has it), not "done"."""
    import threading

    drop = make_drop()
    photo = MEDIA / "exif_offset.jpg"
    owner = drop.fake.owner_of(drop.key)
    drop.fake.assets.setdefault(owner, {})[sha1_of(photo)] = from_the_app = str(uuid.uuid4())
    drop.fake.fail_status = 503
    pipeline, guest = drop.services.pipeline, drop.guest()
    uid = guest.upload(photo)
    assert guest.wait_for(uid, "retrying")
    claimed, go_on = threading.Event(), threading.Event()

    def hold():
        claimed.set()
        go_on.wait(30)

    if held == "after its commit":  # `_date_photo` runs in the claim's thread after its commit
        pipeline._date_photo = lambda upload: hold()
    else:  # its UPDATE made, its transaction still open
        set_one = store_module._set_one

        def claim_then_hold(conn, stmt, params, also=None):
            row = set_one(conn, stmt, params, also)
            if stmt is store_module._claim(False) and row is not None:
                hold()
            return row

        monkeypatch.setattr(store_module, "_set_one", claim_then_hold)
    assert claimed.wait(10)  # the next retry's claim stops there
    stopping = _stopping(drop)
    stop = threading.Thread(target=drop.server.stop)
    stop.start()
    assert stopping.wait(10)
    go_on.set()  # the claim's thread ends after its caller was cancelled
    stop.join(30)
    assert not stop.is_alive()
    _assert_given_back(drop, uid)
    drop.restart()
    drop.fake.fail_status = None
    again = drop.guest(session=guest.session)
    assert again.wait_for(uid, FINAL)["state"] == "duplicate"
    assert drop.upload_row(uid).asset_id == from_the_app and drop.fake.uploads == []


def test_a_lease_renewal_still_running_when_the_server_stops_does_not_hold_the_upload(make_drop):
    """A renewal's thread commits even after its task was cancelled. Committed after the shutdown
    gave this process's leases back, it would hold the upload for a whole lease (a minute), and
    the next server could not deliver it meanwhile: a lease given back is no longer this process's
    to renew."""
    import threading
    from datetime import timedelta

    drop = make_drop()
    pipeline, store = drop.services.pipeline, drop.services.store
    pipeline.lease_seconds = 0.3  # renewed every 0.1 s
    renew, run, release = store.renew_lease, store._run, store.release_leases
    renewing, go_on, renewed = threading.Event(), threading.Event(), threading.Event()

    async def renew_for_a_minute(uid, worker, now, until):
        return await renew(uid, worker, now, now + timedelta(seconds=60))

    async def renewal_held_in_its_thread(fn):
        if "renew_lease" not in fn.__qualname__:
            return await run(fn)

        def held(session):
            renewing.set()
            go_on.wait(30)
            try:
                return fn(session)
            finally:
                renewed.set()

        return await run(held)

    async def release_then_let_the_renewal_go(worker, now):
        await release(worker, now)
        go_on.set()
        await asyncio.to_thread(renewed.wait, 30)

    store.renew_lease, store._run = renew_for_a_minute, renewal_held_in_its_thread
    store.release_leases = release_then_let_the_renewal_go
    waiting = _hold_before_sending(drop)
    guest = drop.guest()
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    assert waiting.wait(10) and renewing.wait(10)
    drop.restart()
    assert renewed.is_set()
    again = drop.guest(session=guest.session)
    assert again.wait_for(uid, FINAL)["state"] == "done"


def test_a_photo_is_fsynced_when_its_delivery_waits_not_as_it_arrives(drop, monkeypatch):
    """A photo sent on at once never costs an fsync (tus/storage.py: 2 ms of CPU a photo); one whose
    delivery waits for a retry is made durable, data and sidecar, before the guest reads "retrying"."""
    staging = drop.services.storage.directory.resolve()
    synced = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path.parent == staging:
            synced.append(path.name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    guest = drop.guest()
    sent = guest.upload(MEDIA / "exif_offset.jpg")
    assert guest.wait_for(sent, FINAL)["state"] == "done"
    assert synced == []
    drop.fake.fail_status = 503
    waiting = guest.upload(MEDIA / "no_date.jpg")
    guest.wait_for(waiting, "retrying")
    assert set(synced) == {waiting, f"{waiting}.info"}  # (again at each later failed attempt)
    drop.fake.fail_status = None
    assert guest.wait_for(waiting, FINAL)["state"] == "done"
