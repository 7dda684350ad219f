"""The store's compare-and-set on uploads, with RETURNING and with the two-statement form that an
SQLite older than 3.35 gets; the rows read without a session."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import Session

from immich_drop.config import database_url as normalise
from immich_drop.db import open_engine
from immich_drop.models import Account, Invite, InviteGuest, Upload, UploadState
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


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "update-then-select"])
def test_a_reservation_gives_the_invite_as_it_now_is_or_none_at_the_limit(database_url, monkeypatch, returning):
    """The owner's console is told from the row the reservation returns: it must hold the new
    counters, and a refused reservation must change nothing."""
    engine = open_engine(normalise(database_url))
    monkeypatch.setattr(engine.dialect, "update_returning", returning)
    store = Store(engine)

    async def run():
        await store.add(Account(user_id="u1", email="a@b.c"))
        await store.add(Invite(id="i" * 32, token_hash="h" * 64, token_enc="t", owner_id="u1", max_files=2,
                               max_total_bytes=100))
        first = await store.reserve_invite("i" * 32, 60)
        too_big = await store.reserve_invite("i" * 32, 41)  # 101 bytes: over max_total_bytes
        second = await store.reserve_invite("i" * 32, 40)
        third = await store.reserve_invite("i" * 32, 0)  # a third file: over max_files
        return first, too_big, second, third, await store.get_invite("i" * 32)

    first, too_big, second, third, stored = asyncio.run(run())
    assert (first.files, first.bytes, first.owner_id) == (1, 60, "u1") and first.last_upload_at is not None
    assert too_big is None and third is None
    assert (second.files, second.bytes) == (2, 100) == (stored.files, stored.bytes)
    engine.dispose()


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "update-then-select"])
def test_a_claim_marks_as_sent_only_a_small_file_no_attempt_began_sending(database_url, monkeypatch, returning):
    engine = open_engine(normalise(database_url))
    monkeypatch.setattr(engine.dialect, "update_returning", returning)
    store = Store(engine)
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    earlier = now - timedelta(seconds=30)

    async def run():
        sizes = {"a": 99, "b": 100, "c": 50, "d": 10, "f": 10, "g": 10}
        for key, size in sizes.items():
            await store.add_upload(Upload(id=key * 32, session_id="s", target_kind="public", filename="x.jpg",
                                          size=size))
        await store.update_upload("c" * 32, sent_at=earlier)  # the relay began sending it while it arrived
        await store.update_upload("d" * 32, state=UploadState.FAILED)  # cancelled before its last byte
        await store.update_upload("f" * 32, state=UploadState.RETRYING, sent_at=earlier)  # an attempt sent it
        await store.update_upload("g" * 32, state=UploadState.RETRYING)  # an attempt stopped before sending
        claimed = {key: await store.claim_delivery(key * 32, "me", now, 60, send_below=100, receiving=True)
                   for key in "abcd"}
        claimed.update({key: await store.claim_delivery(key * 32, "me", now, 60, send_below=100) for key in "fg"})
        assert all(rows is None for _, rows in claimed.values())  # not through an invite link: nothing more read

        await store.add(Account(user_id="u1", email="a@b.c"))
        await store.add(Invite(id="i" * 32, token_hash="h" * 64, token_enc="t", owner_id="u1"))
        await store.add_upload(Upload(id="e" * 32, session_id="s", target_kind="invite", target_id="i" * 32,
                                      filename="x.jpg", size=10))
        through_link, (invite, account) = await store.claim_delivery("e" * 32, "me", now, 60, send_below=100,
                                                                     receiving=True)
        # what its delivery reads first (`Targets.delivery`), read in the same transaction
        assert (through_link.state, invite.id, invite.owner_id, account.user_id) == \
            (UploadState.UPLOADING, "i" * 32, "u1", "u1")
        again, _ = await store.claim_delivery("a" * 32, "other", now, 60, send_below=100, receiving=True)
        return {key: upload for key, (upload, _) in claimed.items()}, again, await store.get_upload("a" * 32)

    claimed, again, stored = asyncio.run(run())
    small, large, relayed = claimed["a"], claimed["b"], claimed["c"]
    assert (small.state, _utc(small.sent_at)) == (UploadState.UPLOADING, now)  # sent at once: marked by the claim
    assert (large.state, large.sent_at) == (UploadState.HASHING, None)  # asked about first: no mark
    assert (relayed.state, _utc(relayed.sent_at)) == (UploadState.HASHING, earlier)  # the relay's mark is kept
    assert (claimed["f"].state, _utc(claimed["f"].sent_at)) == (UploadState.HASHING, earlier)
    assert (claimed["g"].state, _utc(claimed["g"].sent_at)) == (UploadState.UPLOADING, now)
    for upload in (small, large, relayed):
        assert (upload.lease_owner, _utc(upload.lease_until), _utc(upload.received_at)) == \
            ("me", now + timedelta(seconds=60), now)
    assert claimed["f"].received_at is None  # a retry's claim does not touch when it was received
    assert claimed["d"] is None and again is None  # not receiving: nothing marked, nothing claimed
    assert (stored.state, stored.lease_owner) == (UploadState.UPLOADING, "me")
    engine.dispose()


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back (UTC), PostgreSQL aware ones."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def test_an_upload_is_recorded_as_a_session_would_record_it(database_url):
    """`add_upload` writes the row with one INSERT, not through a Session: every column, each value
    converted as the ORM's unit of work converts it. A column left out of the INSERT (its default
    would be stored instead) or a value stored in another form would show against the twin."""
    engine = open_engine(normalise(database_url))
    store = Store(engine)
    when = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=timezone.utc)

    def upload(uid: str) -> Upload:  # every column away from its default
        return Upload(id=uid, session_id="s1", client_address="10.0.0.1", target_kind="invite", target_id="i1",
                      filename="Ünïcode 😀.jpg", filetype="image/jpeg", size=5 * 2**30, last_modified_ms=1700000000000,
                      tz_offset_minutes=-300, tz_name="America/New_York", state=UploadState.RETRYING,
                      message="later", checksum="c" * 40, captured_at="2026-01-02T03:04:05.000-05:00",
                      asset_id="as1", attempts=4, next_attempt_at=when + timedelta(minutes=1), lease_owner="w1",
                      lease_until=when + timedelta(minutes=2), sent_at=when - timedelta(minutes=1),
                      created_at=when - timedelta(days=1), updated_at=when, received_at=when - timedelta(hours=1),
                      guest_name="Anna", guest_message="hi\nthere")

    def bare(uid: str) -> Upload:  # None wherever a column allows it or has a default
        row = Upload(id=uid, session_id="s1", target_kind="public", filename="x.jpg", size=1)
        for column in Upload.__table__.columns:
            if column.nullable or column.default is not None or column.server_default is not None:
                row.__dict__[column.key] = None
        return row

    async def run():
        given = await store.add_upload(upload("a" * 32))
        await store.add(upload("b" * 32))  # the ORM's way
        await store.add_upload(bare("c" * 32))
        await store.add(bare("d" * 32))
        return given

    given = asyncio.run(run())
    assert given.id == "a" * 32 and given.size == 5 * 2**30
    columns = [c.name for c in Upload.__table__.columns if c.name != "id"]
    with Session(engine) as session:
        for uid, twin_id, now in (("a" * 32, "b" * 32, ()), ("c" * 32, "d" * 32, ("created_at", "updated_at"))):
            fast, twin = session.get(Upload, uid), session.get(Upload, twin_id)
            same = [c for c in columns if c not in now]  # defaults of "now" differ by the moment they ran
            assert {c: getattr(fast, c) for c in same} == {c: getattr(twin, c) for c in same}
        assert fast.state == UploadState.RECEIVING and fast.guest_name == "" and fast.sent_at is None
        assert None not in (fast.created_at, fast.updated_at)
        assert session.get(Upload, "a" * 32).guest_message == "hi\nthere"
    engine.dispose()


def test_rows_read_on_the_hot_path_are_what_a_session_loads(database_url):
    """The reads every file makes (an upload; with an invite link the invite, its owner's account and
    the guest's standing) skip the ORM session: each must still give every column, typed as a Session
    gives it. A column whose attribute name differed, or a type the bare read left unconverted,
    would show here."""
    engine = open_engine(normalise(database_url))
    store = Store(engine)
    when = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    rows = [
        Account(user_id="u1", email="a@b.c", name="Ada", api_key_enc="sealed", api_key_id="k1", key_valid=True,
                lang="de", updated_at=when, notify_urls_enc=""),
        Invite(id="i" * 32, token_hash="h" * 64, token_enc="t", owner_id="u1", label="L", title="T",
               album_id="al", album_name="Party", max_uses=3, uses=1, expires_at=when + timedelta(days=2),
               password_hash="scrypt$x", max_file_size=10, max_total_bytes=99, max_files=5, files=2, bytes=7,
               media_kind="photos", archive=True, guest_fields="required", last_upload_at=when, created_at=when,
               disabled=True, deleted_at=when, digest_until=when, closed_noticed=True),
        InviteGuest(invite_id="i" * 32, session_id="s1", unlocked=True, claimed=True),
        Upload(id="a" * 32, session_id="s1", target_kind="invite", target_id="i" * 32, filename="x.jpg", size=3,
               last_modified_ms=1700000000000, guest_name="Anna", guest_message="hi", created_at=when),
    ]

    async def run():
        for row in rows:
            await store.add(row)
        together = [*await store.invite_for_guest("h" * 64, "s1"), *await store.invite_and_owner("i" * 32),
                    *await store.upload_and_invite("a" * 32)]
        alone = [await store.get_account("u1"), await store.get_invite("i" * 32),
                 await store.invite_by_token_hash("h" * 64), await store.guest_standing("i" * 32, "s1"),
                 await store.get_upload("a" * 32)]
        missing = [await store.get_invite("none"), await store.get_account("none"),
                   await store.guest_standing("i" * 32, "s2"), await store.invite_for_guest("x" * 64, "s1"),
                   await store.invite_and_owner("none"), await store.upload_and_invite("none")]
        return together, alone, missing, (await store.invite_for_guest("h" * 64, "s2"))[1]

    together, alone, missing, no_standing = asyncio.run(run())
    account, invite, by_token, standing, upload = alone
    assert missing == [None, None, None, None, (None, None), (None, None)] and no_standing is None
    keys = ["i" * 32, ("i" * 32, "s1"), "u1", "i" * 32, "u1", "a" * 32, "i" * 32]
    with Session(engine) as session:
        for fast, key in ((account, "u1"), (invite, "i" * 32), (by_token, "i" * 32), (standing, ("i" * 32, "s1")),
                          (upload, "a" * 32), *zip(together, keys)):
            loaded = session.get(type(fast), key)
            columns = [c.name for c in type(fast).__table__.columns]
            assert set(fast.__dict__) - {"_sa_instance_state"} == set(columns)  # every column read, no other
            assert {c: getattr(fast, c) for c in columns} == {c: getattr(loaded, c) for c in columns}
            assert all(type(getattr(fast, c)) is type(getattr(loaded, c)) for c in columns)
            assert fast.model_dump() == loaded.model_dump()
    assert (invite.max_uses, invite.archive, invite.album_name, standing.claimed) == (3, True, "Party", True)
    engine.dispose()


def racing_after_standing_read(engine, meanwhile):
    """A Session class whose first read of a browser's standing is followed at once by `meanwhile(other
    session)`, committed: the same browser's other request, landing right after this one looked."""
    class ParallelClaim(Session):
        raced = False

        def get(self, entity, ident, **kwargs):
            found = super().get(entity, ident, **kwargs)
            if entity is InviteGuest and not ParallelClaim.raced:
                ParallelClaim.raced = True
                with Session(engine) as other:
                    meanwhile(other)
                    other.commit()
            return found

    return ParallelClaim


def test_a_browser_that_unlocked_a_password_is_one_use_however_many_requests_claim_at_once(database_url, monkeypatch):
    """A password link: the browser's row exists since its unlock, unclaimed. Two of its first files'
    creations each read it unclaimed and each took a use (owner walk: one guest, "2 of 3 uses").
    Here the other request claims right after this one's read: this one must take no second use."""
    import immich_drop.store as store_module

    engine = open_engine(normalise(database_url))
    store = Store(engine)
    invite = "p" * 32

    def claimed_meanwhile(other):
        other.get(Invite, invite).uses += 1
        other.get(InviteGuest, (invite, "browser")).claimed = True

    ParallelClaim = racing_after_standing_read(engine, claimed_meanwhile)

    async def run():
        await store.add(Account(user_id="u1", email="a@b.c"))
        await store.add(Invite(id=invite, token_hash="q" * 64, token_enc="t", owner_id="u1", max_uses=3))
        await store.unlock_invite(invite, "browser")
        monkeypatch.setattr(store_module, "Session", ParallelClaim)
        return await store.claim_invite(invite, "browser")

    assert asyncio.run(run()) is True
    assert ParallelClaim.raced
    with Session(engine) as s:
        assert s.get(Invite, invite).uses == 1
        assert s.get(InviteGuest, (invite, "browser")).claimed
    engine.dispose()


def test_a_browser_whose_parallel_request_took_the_last_use_has_claimed_the_link(database_url, monkeypatch):
    """A one-time link, and a browser's first files created at once: one request takes the use while
    another has already looked for this browser's claim and found none. The other's UPDATE then finds
    no use left; that must still count as claimed by this browser (it answered "link used" before,
    and the guest's photo was refused), while another browser is refused."""
    import immich_drop.store as store_module

    engine = open_engine(normalise(database_url))
    store = Store(engine)
    invite = "i" * 32

    def claimed_meanwhile(other):
        other.get(Invite, invite).uses += 1
        other.add(InviteGuest(invite_id=invite, session_id="browser", claimed=True))

    ParallelClaim = racing_after_standing_read(engine, claimed_meanwhile)

    monkeypatch.setattr(store_module, "Session", ParallelClaim)

    async def run():
        await store.add(Account(user_id="u1", email="a@b.c"))
        await store.add(Invite(id=invite, token_hash="h" * 64, token_enc="t", owner_id="u1", max_uses=1))
        return await store.claim_invite(invite, "browser"), await store.claim_invite(invite, "another")

    assert asyncio.run(run()) == (True, False)
    assert ParallelClaim.raced
    with Session(engine) as s:
        assert s.get(Invite, invite).uses == 1
    engine.dispose()


def test_a_sign_in_writes_its_own_columns_and_leaves_the_notification_list(database_url):
    """Cold review: a sign-in merged the whole account row back, with the notification list it had
    read before; an address another tab added meanwhile (answered 201) was gone. A sign-in of an
    account that exists writes only what the sign-in decides."""
    engine = open_engine(normalise(database_url))
    store = Store(engine)

    async def run():
        await store.save_account(Account(user_id="u1", email="ada@example.org", api_key_enc="old", lang="en"))
        assert await store.set_notify_urls("u1", "sealed-list", "")  # another tab's addition
        again = await store.save_account(Account(user_id="u1", email="ada@new.example.org", api_key_enc="new",
                                                 api_key_id="k2", lang="de"))
        assert again.api_key_enc == "new"
        return await store.get_account("u1")

    account = asyncio.run(run())
    assert (account.email, account.api_key_enc, account.api_key_id, account.lang, account.notify_urls_enc) == (
        "ada@new.example.org", "new", "k2", "de", "sealed-list")
