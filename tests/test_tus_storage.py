"""StagingStorage's sidecar: written when it says something new, not after every PATCH."""

import asyncio

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
