"""Offset truth and one writer per upload.

The server is killed with SIGKILL in the middle of a PATCH; after a restart HEAD reports exactly the
bytes on disk (the sidecar still says 0), the upload resumes from there, and Immich receives the
original bytes once.
"""

import fcntl
import json

from conftest import MEDIA, Guest, Process, free_port, invite_token, make_file, sha1_of, start_patch, wait_until

CHUNK = 4 * 1024 * 1024


def test_kill_during_patch_then_resume(tmp_path, fake):
    key = fake.add_user()
    env = {"DATA_DIR": str(tmp_path / "data"), "IMMICH_BASE_URL": fake.url, "IMMICH_API_KEY": key,
           "PUBLIC_UPLOAD_PAGE_ENABLED": "true", "SESSION_SECRET": "s", "CHUNK_SIZE": str(CHUNK),
           "LOG_LEVEL": "info", "HOST": "127.0.0.1"}
    source = make_file(tmp_path / "clip.mp4", 3 * CHUNK + 12345, seed=7)
    data = source.read_bytes()
    staging = tmp_path / "data" / "uploads"

    first = Process(env, free_port())
    try:
        guest = Guest(first.url)
        uid = guest.create(len(data), "clip.mp4").headers["Location"].rsplit("/", 1)[-1]
        sock = start_patch(first.url, uid, guest.cookie, 2 * CHUNK)
        sock.sendall(data[: CHUNK + CHUNK // 2])  # 1.5 chunks of a 2-chunk PATCH, then the server dies
        wait_until(lambda: (staging / uid).stat().st_size >= CHUNK, what="bytes on disk")
        first.kill()
        sock.close()
        session = guest.session
        guest.close()
    finally:
        first.stop()

    kept = (staging / uid).stat().st_size
    assert 0 < kept < len(data)
    assert json.loads((staging / f"{uid}.info").read_text())["offset"] == 0  # the sidecar lags behind
    assert (staging / uid).read_bytes() == data[:kept]

    second = Process(env, free_port())
    try:
        guest = Guest(second.url, session=session)
        head = guest.http.head(f"/api/uploads/{uid}", headers=guest.tus_headers())
        assert head.status_code == 200
        assert int(head.headers["Upload-Offset"]) == kept
        uploader = guest.uploader(source, chunk_size=CHUNK, url=f"{second.url}/api/uploads/{uid}")
        assert uploader.offset == kept
        uploader.upload()
        event = guest.wait_for(uid, ["done", "failed"])
        assert event["state"] == "done", event
    finally:
        second.stop()
    [received] = fake.uploads
    assert received.sha1 == sha1_of(source)
    assert received.size == len(data)


def test_second_writer_takes_over_and_the_loop_stays_free(make_drop, tmp_path):
    drop = make_drop(CHUNK_SIZE=str(CHUNK))
    guest = drop.guest()
    source = make_file(tmp_path / "big.jpg", 2 * CHUNK, seed=3)
    data = source.read_bytes()
    uid = guest.create(len(data), "big.jpg").headers["Location"].rsplit("/", 1)[-1]
    staging = drop.services.storage

    sock = start_patch(drop.url, uid, guest.cookie, 2 * CHUNK)
    sock.sendall(data[:CHUNK // 2])
    wait_until(lambda: staging.locks.held(uid), what="the first PATCH to hold the lock")
    assert guest.http.get("/healthz").status_code == 200  # answered while the first PATCH hangs open

    # The same browser asks again from offset 0: the first request is stopped (its bytes kept) and the
    # second learns where to go on from, as a tus client does after a dead connection.
    second = guest.http.patch(f"/api/uploads/{uid}", content=data[:100], headers=guest.tus_headers(**{
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}))
    kept = staging.data_path(uid).stat().st_size
    assert second.status_code == 409 and int(second.headers["Upload-Offset"]) == kept
    reply = sock.recv(4096).decode().lower()
    sock.close()
    assert reply.startswith("http/1.1 204") and f"upload-offset: {kept}" in reply and "connection: close" in reply

    uploader = guest.uploader(source, chunk_size=CHUNK, url=f"{drop.url}/api/uploads/{uid}")
    uploader.upload()
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert drop.fake.uploads[0].sha1 == sha1_of(source)


def test_a_writer_in_another_process_is_refused_at_once(make_drop):
    drop = make_drop(CHUNK_SIZE=str(CHUNK))
    guest = drop.guest()
    uid = guest.create(1000, "a.jpg").headers["Location"].rsplit("/", 1)[-1]
    path = drop.services.storage.locks.path(uid)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as other_replica:
        fcntl.flock(other_replica, fcntl.LOCK_EX)  # a replica sharing DATA_DIR writes this upload
        refused = guest.http.patch(f"/api/uploads/{uid}", content=b"x" * 10, headers=guest.tus_headers(**{
            "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}))
    assert refused.status_code == 423


def test_client_that_drops_mid_patch_resumes_after_its_bytes(make_drop, tmp_path):
    drop = make_drop(CHUNK_SIZE=str(CHUNK))
    guest = drop.guest()
    source = make_file(tmp_path / "video.mov", 2 * CHUNK + 999, seed=5)
    data = source.read_bytes()
    uid = guest.create(len(data), "video.mov").headers["Location"].rsplit("/", 1)[-1]

    sock = start_patch(drop.url, uid, guest.cookie, 2 * CHUNK)
    sock.sendall(data[: CHUNK + 1000])
    path = drop.services.storage.data_path(uid)
    wait_until(lambda: path.stat().st_size >= CHUNK // 2, what="bytes on disk")
    sock.close()  # the phone loses its connection
    wait_until(lambda: not drop.services.storage.locks.held(uid), what="the PATCH to end")

    head = guest.http.head(f"/api/uploads/{uid}", headers=guest.tus_headers())
    offset = int(head.headers["Upload-Offset"])
    assert offset == path.stat().st_size and offset >= CHUNK // 2
    uploader = guest.uploader(source, chunk_size=CHUNK, url=f"{drop.url}/api/uploads/{uid}")
    uploader.upload()
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert drop.fake.uploads[0].sha1 == sha1_of(source)


def test_a_client_that_missed_the_last_answer_learns_the_file_is_complete(make_drop, tmp_path):
    """The last PATCH landed but its answer was lost (a dead socket, a watchdog that cut it): the
    client asks HEAD where to go on. Received, or delivered and its staged copy gone, the answer is
    "complete" (offset = length), so a tus client finishes instead of sending the file again as a
    new upload, which the guest would see come back as "already there"."""
    drop = make_drop()
    guest = drop.guest()
    photo = MEDIA / "exif_offset.jpg"
    size = photo.stat().st_size
    uid = guest.upload(photo)
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert not drop.services.storage.data_path(uid).exists()  # delivered: the staged copy is gone
    head = guest.http.head(f"/api/uploads/{uid}", headers=guest.tus_headers())
    assert head.status_code == 200
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == (str(size), str(size))
    assert head.headers["Cache-Control"] == "no-store" and head.headers["Tus-Resumable"] == "1.0.0"
    resumed = guest.uploader(photo, url=f"{drop.url}/api/uploads/{uid}")
    resumed.upload()  # a tus client resuming it: nothing left to send, nothing created
    assert resumed.url.rsplit("/", 1)[-1] == uid
    assert len(drop.fake.uploads) == 1 and drop.upload_row(uid).state == "done"


def test_head_of_an_upload_that_failed_is_not_told_complete(make_drop):
    """Ended before its last byte (its link deleted, or expired by the janitor), or refused after
    it (Immich said no; "please send it again"): not complete, so a client sends it again."""
    drop = make_drop()
    guest = drop.guest()
    cut = guest.create(100, "photo.jpg").headers["Location"].rsplit("/", 1)[-1]
    drop.server.call(drop.services.pipeline.drop(cut, "dropped by the test"))
    drop.fake.upload_refusal = "Quota exceeded"
    refused = guest.upload(MEDIA / "exif_offset.jpg")
    assert guest.wait_for(refused, ["done", "failed"])["state"] == "failed"
    for uid in (cut, refused):
        assert drop.upload_row(uid).state == "failed"
        head = guest.http.head(f"/api/uploads/{uid}", headers=guest.tus_headers())
        assert head.status_code in (404, 410) and "Upload-Offset" not in head.headers
        # nor "complete" to a PATCH (a 409 with no offset, so tus clients ask HEAD), nor "being
        # delivered" to a DELETE
        patch = guest.http.patch(f"/api/uploads/{uid}", content=b"x", headers=guest.tus_headers(**{
            "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}))
        assert patch.status_code == 409 and "Upload-Offset" not in patch.headers, patch.text
        assert patch.json()["code"] == "not_found"
        delete = guest.http.delete(f"/api/uploads/{uid}", headers=guest.tus_headers())
        assert delete.status_code == 404, delete.text
        assert drop.upload_row(uid).state == "failed"  # kept for the owner's log


def test_a_patch_to_an_upload_whose_link_was_deleted_is_told_why(drop, admin_of):
    """A link deleted while a file was on its way ends that upload; the page's next PATCH hears
    what a new upload through that link would (the link is not valid), not "upload not found" nor
    "already complete"."""
    admin = admin_of(drop)
    invite = admin.invite()
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    uid = guest.create(1000, invite=token).headers["Location"].rsplit("/", 1)[-1]
    assert admin.call("DELETE", f"/api/invites/{invite['id']}").status_code == 204
    wait_until(lambda: drop.upload_row(uid).state == "failed", what="the upload ended")
    patch = guest.http.patch(f"/api/uploads/{uid}", content=b"x", headers=guest.tus_headers(**{
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}))
    assert patch.status_code == 404 and patch.json()["code"] == "link_invalid", patch.text
