"""StagingStorage: the sidecar written when it says something new, not after every PATCH; fsyncs where they pay."""

import asyncio
import os
from pathlib import Path

from immich_drop.tus import storage as storage_module
from immich_drop.tus.locks import UploadLocks
from immich_drop.tus.storage import StagingStorage


def test_the_sidecar_is_rewritten_only_when_a_lasting_field_changes(tmp_path):
    storage = StagingStorage(tmp_path, UploadLocks(tmp_path / ".locks"), 3600)
    uid = "c" * 32
    info = {"metadata": {"filename": "a.mov"}, "size": 10, "offset": 0, "upload_part": 0, "created_at": "now",
            "upload_chunk_size": 0, "expires": None, "error": None}

    async def run():
        await storage.create(uid)
        await storage.write_info(uid, info)
        first = storage.info_path(uid).stat().st_ino
        await storage.append(uid, b"12345")
        await storage.flush(uid)
        await storage.write_info(uid, {**info, "offset": 5, "upload_part": 1, "upload_chunk_size": 5, "expires": "x"})
        after_patch = storage.info_path(uid).stat().st_ino
        await storage.write_info(uid, {**info, "offset": 5, "error": "refused"})
        after_error = storage.info_path(uid).stat().st_ino
        return first, after_patch, after_error, await storage.read_info(uid)

    first, after_patch, after_error, read = asyncio.run(run())
    assert after_patch == first  # bookkeeping only: the file was not replaced
    assert after_error != first  # a lasting change was written
    assert read["offset"] == 5 and read["error"] == "refused" and read["metadata"] == {"filename": "a.mov"}


def test_a_fresh_id_is_new_once_then_the_disk_answers(tmp_path):
    """The guard marks the id it just made: tuspyserver's "exists?" at creation is answered without a
    disk look, once; after that (or after a delete) the disk decides, so a stale mark cannot hide a file."""
    storage = StagingStorage(tmp_path, UploadLocks(tmp_path / ".locks"), 3600)
    made, dropped = "d" * 32, "e" * 32
    storage.data_path(made).write_bytes(b"")  # on disk, though marked fresh: the mark answers only once

    async def run():
        storage.fresh(made)
        first, second = await storage.exists(made), await storage.exists(made)
        storage.fresh(dropped)
        await storage.delete(dropped)
        storage.data_path(dropped).write_bytes(b"x")
        return first, second, await storage.exists(dropped)

    assert asyncio.run(run()) == (False, True, True)


def test_only_long_uploads_and_those_of_unknown_length_are_fsynced_as_they_arrive(tmp_path, monkeypatch):
    """Durable where it pays: a photo-sized upload costs no fsync (it goes on to Immich within seconds;
    2 ms of CPU a photo); a long one, or one whose length is not known yet, is fsynced as it is made
    (the sidecar, then the folder, which names it and its data file) and when its last byte lands
    (the data), so a power cut does not cost it."""
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
                        or real_fsync(fd))
    monkeypatch.setattr(storage_module, "DURABLE_FROM", 8)
    storage = StagingStorage(tmp_path, UploadLocks(tmp_path / ".locks"), 3600)
    info = {"metadata": {"filename": "a.jpg"}, "offset": 0, "upload_part": 0, "created_at": "now",
            "upload_chunk_size": 0, "expires": None, "error": None}
    short, long, unknown = "a" * 32, "b" * 32, "c" * 32

    async def send(uid: str, size, body: bytes) -> list:
        synced.clear()
        await storage.create(uid)
        await storage.write_info(uid, {**info, "size": size})
        await storage.append(uid, body)
        await storage.flush(uid)
        return list(synced)

    async def run():
        return await send(short, 7, b"1234567"), await send(long, 8, b"12345678"), await send(unknown, None, b"12")

    folder = tmp_path.name  # after the sidecar's rename, which it makes durable
    assert asyncio.run(run()) == ([], [f"{long}.info.tmp", folder, long], [f"{unknown}.info.tmp", folder, unknown])


def test_a_keeper_fsyncs_the_data_and_its_sidecar_and_minds_no_missing_file(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
                        or real_fsync(fd))
    storage = StagingStorage(tmp_path, UploadLocks(tmp_path / ".locks"), 3600)
    kept, gone = "d" * 32, "e" * 32
    storage.data_path(kept).write_bytes(b"x")
    storage.info_path(kept).write_text("{}")
    storage.keeper(kept)()
    storage.keeper(gone)()  # removed meanwhile: nothing to keep, no error
    assert synced == [kept, f"{kept}.info", tmp_path.name, tmp_path.name]  # the folder names them


def test_a_keeper_that_cannot_fsync_says_so(tmp_path, monkeypatch, caplog):
    """Review: EIO from fsync was swallowed; the page cache stays readable after it, so the retry that
    follows would never tell. The server's log does."""
    def broken(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    storage = StagingStorage(tmp_path, UploadLocks(tmp_path / ".locks"), 3600)
    uid = "f" * 32
    storage.data_path(uid).write_bytes(b"x")
    storage.keeper(uid)()
    assert f"could not make staged upload {uid} durable" in caplog.text
