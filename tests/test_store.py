"""The store's compare-and-set on uploads, with RETURNING and with the two-statement form that an
SQLite older than 3.35 gets."""

import asyncio

import pytest

from immich_drop.config import database_url as normalise
from immich_drop.db import open_engine
from immich_drop.models import Upload, UploadState
from immich_drop.store import Store


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "update-then-select"])
def test_compare_and_set_changes_only_from_the_given_states(database_url, monkeypatch, returning):
    engine = open_engine(normalise(database_url))
    monkeypatch.setattr(engine.dialect, "update_returning", returning)
    store = Store(engine)

    async def run():
        await store.add_upload(Upload(id="a" * 32, session_id="s", target_kind="public", filename="x.jpg", size=3))
        received = await store.update_upload("a" * 32, only_from=[UploadState.RECEIVING], state=UploadState.RECEIVED,
                                             message="in")
        again = await store.update_upload("a" * 32, only_from=[UploadState.RECEIVING], state=UploadState.FAILED)
        missing = await store.update_upload("b" * 32, state=UploadState.DONE)
        return received, again, missing, await store.get_upload("a" * 32)

    received, again, missing, stored = asyncio.run(run())
    assert (received.state, received.message, received.filename) == (UploadState.RECEIVED, "in", "x.jpg")
    assert again is None and missing is None  # the condition did not hold / no such upload
    assert (stored.state, stored.message) == (UploadState.RECEIVED, "in")
    engine.dispose()


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "update-then-select"])
def test_the_duplicate_cache_is_written_with_the_state_change_or_not_at_all(database_url, monkeypatch, returning):
    engine = open_engine(normalise(database_url))
    monkeypatch.setattr(engine.dialect, "update_returning", returning)
    store = Store(engine)
    sha = "c" * 40

    async def run():
        for uid in ("a" * 32, "b" * 32, "d" * 32):
            await store.add_upload(Upload(id=uid, session_id="s", target_kind="public", filename="x.jpg", size=3))
        done = [UploadState.RECEIVING]
        await store.update_upload("a" * 32, only_from=done, state=UploadState.DONE, remember=("owner", sha, "first"))
        refused = await store.update_upload("a" * 32, only_from=done, state=UploadState.DONE,
                                            remember=("owner", sha, "never"))  # not receiving now: nothing written
        assert refused is None and await store.known_asset("owner", sha) == "first"
        await store.update_upload("b" * 32, only_from=done, state=UploadState.DONE, remember=("owner", sha, "second"))
        await store.update_upload("d" * 32, state=UploadState.DONE, remember=("other", sha, "theirs"))  # per owner
        return [await store.known_asset(o, sha) for o in ("owner", "other", "nobody")]

    assert asyncio.run(run()) == ["second", "theirs", None]  # the same bytes, a newer asset id: updated
    engine.dispose()
