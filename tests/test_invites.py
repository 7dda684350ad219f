"""Invites end to end: life cycle, one-time claims, racing guests, passwords, expiry, disable, delete,
revoked keys, ownership, QR codes. Real HTTP, real tus clients, the fake Immich."""

import asyncio
import concurrent.futures
import io
import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from conftest import MEDIA, SIGNATURES, Admin, invite_token, sha1_of, start_patch, wait_until
from test_limits import read_reply

from immich_drop.models import Upload


@pytest.fixture
def drop(make_drop):
    return make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")


def test_invite_life_cycle(drop, admin_of, fake):
    admin = admin_of(drop)
    invite = admin.invite(label="Grandma Rose (one-time)", title="Anna & Tom's wedding", album={"name": "Wedding guests"},
                          maxUses=1, expiresInDays=7, maxFiles=10, maxFileSize=50_000_000, mediaKind="all")
    assert invite["state"] == "active" and invite["maxUses"] == 1 and invite["albumName"] == "Wedding guests"
    token = invite_token(invite)
    assert len(token) >= 22  # at least 128 bits

    guest = drop.guest()
    page = guest.http.get(f"/i/{token}")
    assert page.status_code == 200
    answer = guest.http.get(f"/api/i/{token}")
    info = answer.json()
    assert info["title"] == "Anna & Tom's wedding" and info["albumName"] == "Wedding guests" and info["remaining"]["files"] == 10
    assert "Grandma" not in answer.text and "Grandma" not in page.text  # the label is the owner's, never the guest's
    first = guest.invite_upload(MEDIA / "exif_offset.jpg", token)
    second = guest.invite_upload(MEDIA / "creation_time.mp4", token)  # the claiming browser may send many
    for uid in (first, second):
        assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"

    owner = [u for u, user in fake.users.items() if user["email"] == "ada@example.org"][0]
    assert {r.owner for r in fake.uploads} == {owner}
    [album] = fake.albums_named(owner, "Wedding guests")
    assert len(album.assets) == 2 and album.id == invite["albumId"]
    listed = admin.call("GET", f"/api/invites/{invite['id']}").json()
    assert listed["state"] == "used up" and listed["uses"] == 1 and listed["files"] == 2
    assert listed["bytes"] == sum((MEDIA / n).stat().st_size for n in ("exif_offset.jpg", "creation_time.mp4"))
    log = admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()
    assert sorted((e["filename"], e["state"]) for e in log) == [("creation_time.mp4", "done"), ("exif_offset.jpg", "done")]
    assert set(log[0]) == {"id", "filename", "size", "state", "code", "message", "guestName", "guestMessage",
                           "createdAt"}

    # Any other browser: the link is used.
    stranger = drop.guest()
    closed = stranger.http.get(f"/i/{token}")
    assert closed.status_code == 410 and "already been used" in closed.text
    assert stranger.create(100, invite=token).status_code == 410


def test_a_name_and_message_where_the_page_does_not_ask_are_not_heard(make_drop, admin_of):
    """A link set to hide them, and the public page, do not ask the guest's name and message; a client
    that sends them in the tus metadata anyway had them shown in the owner's log and written into the
    asset's description in Immich (attack run)."""
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="true")
    admin = admin_of(drop)
    hidden, asking = admin.invite(guestFields="hidden"), admin.invite()
    said = {"guestName": "Injected Name", "guestMessage": "Visit http://phish.example"}
    guest = drop.guest()
    uids = [guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(hidden), metadata=said),
            guest.upload(MEDIA / "no_date.jpg", metadata=said),
            guest.invite_upload(MEDIA / "exif_no_offset.jpg", invite_token(asking), metadata=said)]
    for uid in uids:
        guest.wait_for(uid, "done")
    rows = [drop.upload_row(uid) for uid in uids]
    assert [(row.guest_name, row.guest_message) for row in rows] == [
        ("", ""), ("", ""), ("Injected Name", "Visit http://phish.example")]
    assert sorted(drop.fake.descriptions.values()) == ["From Injected Name: Visit http://phish.example"]
    log = admin.call("GET", f"/api/invites/{hidden['id']}/uploads").json()
    assert [(e["guestName"], e["guestMessage"]) for e in log] == [("", "")]


def test_unknown_tokens_learn_nothing(drop, admin_of):
    admin = admin_of(drop)
    invite = admin.invite(album={"name": "Secret album"})
    guest = drop.guest()
    unknown = guest.http.get("/i/not-a-real-token")
    admin.call("DELETE", f"/api/invites/{invite['id']}")
    deleted = guest.http.get(f"/i/{invite_token(invite)}")
    assert unknown.status_code == deleted.status_code == 404 and unknown.text == deleted.text
    assert "Secret album" not in unknown.text and drop.fake.url not in unknown.text
    api = guest.http.get("/api/i/not-a-real-token")
    assert api.status_code == 404 and api.json() == {"message": "This upload link is not valid.", "code": "link_invalid",
                                                     "params": {}}
    assert guest.create(10, invite="not-a-real-token").status_code == 404


def test_racing_guests_cannot_exceed_the_uses(drop, admin_of):
    admin = admin_of(drop)
    token = invite_token(admin.invite(maxUses=3))
    guests = [drop.guest() for _ in range(10)]
    for guest in guests:
        assert guest.http.get(f"/i/{token}").status_code == 200  # each browser opens the link
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda g: g.create(100, invite=token).status_code, guests))
    assert sorted(statuses) == [201] * 3 + [410] * 7


def test_racing_files_cannot_exceed_the_limits(drop, admin_of):
    admin = admin_of(drop)
    token = invite_token(admin.invite(maxFiles=4, maxTotalBytes=10_000))
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: guest.create(100, invite=token).status_code, range(10)))
    assert sorted(statuses) == [201] * 4 + [403] * 6
    big = admin.invite(maxTotalBytes=1000)
    other = drop.guest()
    other.http.get(f"/i/{invite_token(big)}")
    assert other.create(600, invite=invite_token(big)).status_code == 201
    refused = other.create(600, invite=invite_token(big))
    assert refused.status_code == 403 and "limit is reached" in refused.json()["message"]
    state = lambda invite: admin.call("GET", f"/api/invites/{invite['id']}").json()["state"]
    assert state(big) == "active"  # 400 bytes are left
    assert other.create(400, invite=invite_token(big)).status_code == 201 and state(big) == "full"


def test_a_file_the_full_link_refuses_takes_no_use(drop, admin_of):
    """Attack run: two browsers refused "limit reached" for a file too big for what a two-use link
    had left each took a use, and a third browser's small file was refused "already used"; refused
    browsers raised a link's uses to 40. A use is taken only with a place."""
    admin = admin_of(drop)
    invite = admin.invite(maxUses=2, maxTotalBytes=3000)
    token = invite_token(invite)
    refused = [drop.guest() for _ in range(6)]
    for guest in refused:
        guest.http.get(f"/i/{token}")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda g: g.create(5000, invite=token), refused))
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(403, "limit_reached")] * 6
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["uses"] == 0
    welcome = drop.guest()
    welcome.http.get(f"/i/{token}")
    assert welcome.create(1000, invite=token).status_code == 201
    shown = admin.call("GET", f"/api/invites/{invite['id']}").json()
    assert (shown["uses"], shown["files"], shown["bytes"]) == (1, 1, 1000)


def test_a_browser_refused_for_no_room_takes_no_use(make_drop, admin_of):
    """Attack run: a creation answered 429 (unfinished uploads from its address) or 507 had taken its
    browser's use of the link all the same. The use goes back with the place."""
    drop = make_drop(INVITE_PENDING_FILES_PER_ADDRESS="1")
    admin = admin_of(drop)
    invite = admin.invite(maxUses=2)
    token = invite_token(invite)
    first, refused, later = drop.guest(), drop.guest(), drop.guest()
    for guest in (first, refused, later):
        guest.http.get(f"/i/{token}")
    made = first.create(100, invite=token)
    assert made.status_code == 201
    assert refused.create(100, invite=token).status_code == 429  # the address has an unfinished upload
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["uses"] == 1
    assert first.http.delete(made.headers["Location"], headers=first.tus_headers()).status_code == 204
    assert later.create(100, invite=token).status_code == 201  # the link's second use was still there


def test_a_creation_waiting_its_turn_holds_no_place_of_its_link(drop, admin_of):
    """Attack run: creations queued behind one another (the room's lock) each held its link's place
    while it waited, and a kill -9 then left 38 places taken with no upload behind them, for good.
    A place is reserved in the creation's turn, just before its row is written."""
    admin = admin_of(drop)
    invite = admin.invite(maxFiles=10)
    token = invite_token(invite)
    guests = [drop.guest() for _ in range(5)]
    for guest in guests:
        guest.http.get(f"/i/{token}")
    gate = drop.services.room.gate
    drop.server.call(gate.acquire())
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        try:
            answers = [pool.submit(guest.create, 100, invite=token) for guest in guests]
            wait_until(lambda: len(gate._waiters or ()) == 5, what="five creations waiting their turn")
            shown = admin.call("GET", f"/api/invites/{invite['id']}").json()
            assert (shown["files"], shown["uses"]) == (0, 0)
        finally:
            drop.server.loop.call_soon_threadsafe(gate.release)
        assert [a.result().status_code for a in answers] == [201] * 5
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["files"] == 5


def test_the_owner_removes_a_file_stopped_on_its_way_and_its_place_comes_back(drop, admin_of):
    """Attack run: one guest's creations that never sent a byte held a link's places for the day the
    janitor waits, and its owner could do nothing. The owner removes a file still on its way (not
    one a PATCH is writing, nor one delivered); its place comes back, its guest hears it is gone."""
    admin = admin_of(drop)
    invite = admin.invite(maxFiles=1)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    made = guest.create(1000, invite=token)
    uid = made.headers["Location"].rsplit("/", 1)[-1]
    assert drop.guest().create(100, invite=token).status_code in (403, 410)  # the link is full
    writing = start_patch(drop.url, uid, guest.cookie, 1000)  # a PATCH holds it: not removed under it
    wait_until(lambda: drop.services.storage.locks.held(uid), what="the PATCH's lock")
    moving = admin.call("DELETE", f"/api/invites/{invite['id']}/uploads/{uid}")
    assert moving.status_code == 409 and moving.json()["code"] == "upload_moving"
    writing.close()
    wait_until(lambda: not drop.services.storage.locks.held(uid), what="the PATCH let go")
    other = admin_of(drop, "eve@example.org")
    assert other.call("DELETE", f"/api/invites/{invite['id']}/uploads/{uid}").status_code == 404
    assert admin.call("DELETE", f"/api/invites/{invite['id']}/uploads/{'0' * 32}").json()["code"] == "no_such_upload"
    assert admin.call("DELETE", f"/api/invites/{invite['id']}/uploads/{uid}").status_code == 204
    assert drop.upload_row(uid) is None and not drop.services.storage.data_path(uid).exists()
    assert guest.http.head(made.headers["Location"], headers=guest.tus_headers()).status_code == 404
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["files"] == 0
    delivered = guest.invite_upload(MEDIA / "exif_offset.jpg", token)  # the place is back
    guest.wait_for(delivered, "done")
    done = admin.call("DELETE", f"/api/invites/{invite['id']}/uploads/{delivered}")
    assert done.status_code == 409 and drop.upload_row(delivered).state == "done"


def test_the_owner_removes_every_file_stopped_on_its_way_at_once_and_leaves_those_moving(drop, admin_of):
    """Attack run: one guest's creations that never send a byte fill a link's places, and Remove one
    by one took a click each. One request removes every stopped file of the link; a file whose
    guest is still sending it, and a stopped one a PATCH has just taken up, stay."""
    admin = admin_of(drop)
    invite = admin.invite(maxFiles=6)
    token = invite_token(invite)
    hoarder, sender = drop.guest(), drop.guest()
    for guest in (hoarder, sender):
        guest.http.get(f"/i/{token}")
    made = [hoarder.create(1000, invite=token).headers["Location"].rsplit("/", 1)[-1] for _ in range(4)]
    moving = sender.create(1000, invite=token).headers["Location"].rsplit("/", 1)[-1]
    long_ago = time.time() - 3600  # no byte for an hour: stopped (the log's rule: RESERVATION_IDLE)
    for uid in made:
        os.utime(drop.services.storage.data_path(uid), (long_ago, long_ago))
    taken_up = made.pop()
    writing = start_patch(drop.url, taken_up, hoarder.cookie, 1000)  # its guest came back: a PATCH holds it
    wait_until(lambda: drop.services.storage.locks.held(taken_up), what="the PATCH's lock")
    log = {row["id"]: row for row in admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()}
    assert [log[uid]["stopped"] for uid in made] == [True] * 3 and log[moving]["stopped"] is False
    assert admin_of(drop, "eve@example.org").call("DELETE", f"/api/invites/{invite['id']}/uploads").status_code == 404
    answer = admin.call("DELETE", f"/api/invites/{invite['id']}/uploads")
    assert answer.status_code == 200 and answer.json() == {"removed": 3, "moving": 1}
    for uid in made:
        assert drop.upload_row(uid) is None and not drop.services.storage.data_path(uid).exists()
        assert hoarder.http.head(f"/api/uploads/{uid}", headers=hoarder.tus_headers()).status_code == 404
    assert drop.upload_row(moving).state == "receiving" and drop.upload_row(taken_up).state == "receiving"
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["files"] == 2  # three places back
    writing.close()
    wait_until(lambda: not drop.services.storage.locks.held(taken_up), what="the PATCH let go")
    assert admin.call("DELETE", f"/api/invites/{invite['id']}/uploads").json() == {"removed": 1, "moving": 0}
    assert drop.upload_row(moving).state == "receiving"  # never stopped: its guest sends it


def test_a_file_being_created_or_sent_again_is_not_removed_as_stopped(drop, admin_of, monkeypatch):
    """Cold review: a creation writes its row before tuspyserver makes its staged files, and a row
    with no staged file read as stopped: removed in that moment, the guest got 201 for an upload
    without a row. And a file whose guest sent a PATCH after the log was read was removed all the
    same: whether a file is stopped is asked again under its lock."""
    from immich_drop.routes import invites as routes

    admin = admin_of(drop)
    invite = admin.invite(maxFiles=6)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    storage, gate = drop.services.storage, drop.server.call(_event())
    made_for_real = storage.create

    async def held_create(upload):
        await gate.wait()
        return await made_for_real(upload)

    monkeypatch.setattr(storage, "create", held_create)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        creating = pool.submit(guest.create, 1000, "late.jpg", token)
        wait_until(lambda: drop.server.call(drop.services.store.count_by_state()) == {"receiving": 1},
                   what="the row written, its staged files not yet")
        assert admin.call("PATCH", f"/api/invites/{invite['id']}", json={"disabled": True}).status_code == 200
        [row] = admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()
        assert row["stopped"] is False  # being made: not stopped, even on a closed link
        assert admin.call("DELETE", f"/api/invites/{invite['id']}/uploads").json() == {"removed": 0, "moving": 0}
        drop.server.loop.call_soon_threadsafe(gate.set)
        assert creating.result().status_code == 201
    assert drop.upload_row(row["id"]).state == "receiving"
    # stopped when the log is read (its link off), its guest back by the time it is locked
    assert admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()[0]["stopped"] is True
    assert admin.call("PATCH", f"/api/invites/{invite['id']}", json={"disabled": False}).status_code == 200
    staged = storage.data_path(row["id"])
    os.utime(staged, (time.time() - 3600, time.time() - 3600))
    read_for_real = routes._on_their_way

    async def then_a_patch(services, link, uploads):
        found = await read_for_real(services, link, uploads)
        os.utime(staged)  # a byte lands just after the log of stopped files was read
        return found

    monkeypatch.setattr(routes, "_on_their_way", then_a_patch)
    assert admin.call("DELETE", f"/api/invites/{invite['id']}/uploads").json() == {"removed": 0, "moving": 1}
    assert drop.upload_row(row["id"]).state == "receiving"


def test_a_creation_the_owner_removed_that_then_fails_gives_its_place_back_once(drop, admin_of, monkeypatch):
    """Cold review: a creation that failed after its owner had removed its row gave its place in
    the link's limits back a second time: a two-file link then took three files."""
    admin = admin_of(drop)
    invite = admin.invite(maxFiles=2)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    assert guest.create(1000, "kept.jpg", token).status_code == 201
    storage, gate = drop.services.storage, drop.server.call(_event())

    async def failing_create(upload):
        await gate.wait()
        raise OSError("the disk said no")

    monkeypatch.setattr(storage, "create", failing_create)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        creating = pool.submit(guest.create, 1000, "lost.jpg", token)
        wait_until(lambda: drop.server.call(drop.services.store.count_by_state()) == {"receiving": 2},
                   what="the second row written")
        lost = next(r for r in admin.call("GET", f"/api/invites/{invite['id']}/uploads").json() if r["filename"] == "lost.jpg")
        assert admin.call("DELETE", f"/api/invites/{invite['id']}/uploads/{lost['id']}").status_code == 204
        drop.server.loop.call_soon_threadsafe(gate.set)
        assert creating.result().status_code >= 500
    monkeypatch.undo()
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["files"] == 1
    assert guest.create(1000, "next.jpg", token).status_code == 201
    assert guest.create(1000, "one too many.jpg", token).status_code in (403, 410)


async def _event():
    return asyncio.Event()


def test_a_link_used_up_and_full_still_refuses_other_browsers_as_used(drop, admin_of):
    # "full" came first and hid "used up": a stranger could open a one-time link whose one file was taken.
    admin = admin_of(drop)
    invite = admin.invite(maxUses=1, maxFiles=1, album={"name": "Private"})
    token, first, stranger = invite_token(invite), drop.guest(), drop.guest()
    first.http.get(f"/i/{token}")
    assert first.create(100, invite=token).status_code == 201
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["state"] == "used up"
    assert stranger.http.get(f"/i/{token}").status_code == 410
    answer = stranger.http.get(f"/api/i/{token}")
    assert answer.status_code == 410 and "Private" not in answer.text


def test_a_link_for_several_browsers_says_it_was_used_by_as_many_as_it_allows(drop, admin_of):
    """Owner walk: a link for three browsers said "already been used" as a one-time link does; a
    one-time link's guest reads the short word (guest walk), this one the long."""
    admin = admin_of(drop)
    token = invite_token(admin.invite(maxUses=2))
    for guest in (drop.guest(), drop.guest()):
        guest.http.get(f"/i/{token}")
        assert guest.create(100, invite=token).status_code == 201
    third = drop.guest()
    page = third.http.get(f"/i/{token}")
    assert page.status_code == 410 and "as many browsers as it allows.</h1>" in page.text
    refused = third.create(100, invite=token)
    assert refused.status_code == 410 and refused.json()["params"] == {"max": 2}


def test_file_rules(drop, admin_of):
    admin = admin_of(drop)
    photos = invite_token(admin.invite(mediaKind="photos", maxFileSize=1000))
    guest = drop.guest()
    guest.http.get(f"/i/{photos}")
    video = guest.create(100, "clip.mp4", invite=photos)
    assert video.status_code == 415 and video.json()["message"] == "This link takes photos only."
    big = guest.create(1001, "big.jpg", invite=photos)
    assert big.status_code == 413 and big.json()["code"] == "file_too_large" and "at most 1 KB" in big.json()["message"]
    assert guest.create(1000, "ok.jpg", invite=photos).status_code == 201


def test_cancelled_upload_gives_its_reservation_back(drop, admin_of):
    admin = admin_of(drop)
    invite = admin.invite(maxFiles=1)
    guest = drop.guest()
    guest.http.get(f"/i/{invite_token(invite)}")
    created = guest.create(100, invite=invite_token(invite))
    location = created.headers["Location"].replace(drop.url, "")
    assert guest.http.delete(location, headers=guest.tus_headers()).status_code == 204
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["files"] == 0
    assert guest.create(100, invite=invite_token(invite)).status_code == 201


def test_password_gate(drop, admin_of):
    admin = admin_of(drop)
    invite = admin.invite(password="open sesame")
    assert invite["hasPassword"] is True and "open sesame" not in str(invite)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    assert guest.http.get(f"/api/i/{token}").json()["needsPassword"] is True
    locked = guest.create(100, invite=token)
    assert locked.status_code == 401 and "password" in locked.json()["message"]
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "wrong"}).status_code == 401
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"}).status_code == 204
    assert guest.http.get(f"/api/i/{token}").json()["unlocked"] is True
    assert guest.create(100, invite=token).status_code == 201
    other = drop.guest()  # the unlock belongs to that browser session only
    other.http.get(f"/i/{token}")
    assert other.create(100, invite=token).status_code == 401


def test_before_its_password_a_link_shows_its_title_only(drop, admin_of):
    """The album's name, the limits and the name-and-message questions were given to anyone holding
    the URL before the password (attack run); the page asked "Who is sending?" before the password."""
    admin = admin_of(drop)
    invite = admin.invite(title="Anna's party", password="open sesame", album={"name": "Divorce papers"},
                          maxFiles=7, maxFileSize=5_000_000, mediaKind="photos", guestFields="required", maxUses=1)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    locked = guest.http.get(f"/api/i/{token}").json()
    assert locked["title"] == "Anna's party" and locked["needsPassword"] is True and locked["unlocked"] is False
    assert "Divorce" not in str(locked) and locked["guestFields"] == "hidden" and locked["expiresAt"] is None
    assert set(locked["limits"].values()) == {None, "all"} and set(locked["remaining"].values()) == {None}
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"}).status_code == 204
    shown = guest.http.get(f"/api/i/{token}").json()
    assert shown["albumName"] == "Divorce papers" and shown["guestFields"] == "required"
    assert shown["limits"]["maxFiles"] == 7 and shown["remaining"]["files"] == 7 and shown["limits"]["maxUses"] == 1


def test_an_unlocked_browser_still_needs_a_use_of_a_one_time_link(drop, admin_of):
    """A browser's standing row exists once it unlocks a password: only a claimed use lets it past
    a used-up link (the claim is skipped only for a browser whose standing says claimed)."""
    admin = admin_of(drop)
    token = invite_token(admin.invite(password="open sesame", maxUses=1))
    first, second = drop.guest(), drop.guest()
    for guest in (first, second):
        guest.http.get(f"/i/{token}")
        assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"}).status_code == 204
    assert first.create(100, invite=token).status_code == 201
    refused = second.create(100, invite=token)
    assert refused.status_code == 410 and refused.json()["code"] == "link_used"
    assert refused.json()["params"] == {"max": 1}  # a one-time link: its pages say the short word (guest walk)
    assert second.http.get(f"/api/i/{token}").json()["params"] == {"max": 1}
    assert "This link has already been used.</h1>" in second.http.get(f"/i/{token}").text
    assert first.create(100, "again.jpg", invite=token).status_code == 201  # its use holds for more files


def test_a_browser_that_unlocked_is_one_use_when_its_first_files_are_created_at_once(drop, admin_of):
    """One guest, a three-use password link, eight files chosen at once: the link said "2 of 3 uses"
    (owner walk; 4 in one run), and the family's other guests found it used up."""
    from concurrent.futures import ThreadPoolExecutor

    admin = admin_of(drop)
    made = admin.invite(password="open sesame", maxUses=3)
    token = invite_token(made)
    for round in range(3):  # a race: more than one try to meet it
        guest = drop.guest()
        guest.http.get(f"/i/{token}")
        assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"}).status_code == 204
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: guest.create(100 + n, f"p{n}.jpg", invite=token).status_code, range(8)))
        assert answers == [201] * 8
        assert admin.call("GET", f"/api/invites/{made['id']}").json()["uses"] == round + 1


def test_password_attempts_are_rate_limited(drop, admin_of):
    admin = admin_of(drop)
    token = invite_token(admin.invite(password="open sesame"))
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    for _ in range(10):
        assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "guess"}).status_code == 401
    limited = guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"})
    assert limited.status_code == 429 and "Retry-After" in limited.headers


def test_expiry_stops_new_and_running_uploads(drop, admin_of):
    admin = admin_of(drop)
    invite = admin.invite(expiresInDays=1)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    uid = guest.create(1000, invite=token).headers["Location"].rsplit("/", 1)[-1]
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    refused = admin.call("PATCH", f"/api/invites/{invite['id']}", json={"expiresAt": past.isoformat()})
    assert refused.status_code == 400 and refused.json()["errors"]["expiresAt"]["code"] == "expiry_past"
    drop.server.call(drop.services.store.update_invite(invite["id"], expires_at=past))  # time passes
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["state"] == "expired"
    assert guest.http.get(f"/i/{token}").status_code == 410
    assert guest.create(100, invite=token).status_code == 410
    patch = guest.http.patch(f"/api/uploads/{uid}", content=b"x" * 10, headers=guest.tus_headers(**{
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}))
    assert patch.status_code == 410 and patch.json()["message"] == "This upload link has expired."
    assert drop.services.storage.data_path(uid).stat().st_size == 0
    assert admin.call("PATCH", f"/api/invites/{invite['id']}", json={"expiresAt": "2020-01-01T00:00:00"}).status_code == 400


@pytest.mark.parametrize("moment, code", [("9999-12-31T23:59:00+00:00", "expiry_too_far"),
                                           ("9998-12-31T23:59:00-05:00", "expiry_too_far"),  # 9999 in UTC
                                           ("0001-01-01T00:00:00+01:00", "expiry_past"),
                                           ("1999-12-31T23:00:00+00:00", "expiry_past")])
def test_an_expiry_the_server_cannot_keep_is_named_for_what_it_is(drop, admin_of, moment, code):
    """The console's date picker takes 9999-12-31, which read "This is not a date and time" (owner
    walk): a date too far is said to be too far, one from before 2000 to be past."""
    admin = admin_of(drop)
    invite = admin.invite()
    refused = admin.call("PATCH", f"/api/invites/{invite['id']}", json={"expiresAt": moment})
    assert refused.status_code == 400 and refused.json()["errors"]["expiresAt"]["code"] == code
    assert admin.call("PATCH", f"/api/invites/{invite['id']}", json={"expiresAt": "9998-06-30T12:00:00+00:00"}).status_code == 200


def test_disable_during_an_upload(drop, admin_of, fake):
    admin = admin_of(drop)
    invite = admin.invite()
    token = invite_token(invite)
    guest = drop.guest()
    fake.fail_status = 503
    received = guest.invite_upload(MEDIA / "exif_offset.jpg", token)  # complete, waiting for Immich
    guest.wait_for(received, "retrying")
    partial = guest.create(1000, invite=token).headers["Location"].rsplit("/", 1)[-1]
    admin.call("PATCH", f"/api/invites/{invite['id']}", json={"disabled": True})
    patch = guest.http.patch(f"/api/uploads/{partial}", content=b"x" * 10, headers=guest.tus_headers(**{
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}))
    assert patch.status_code == 410 and drop.services.storage.data_path(partial).stat().st_size == 0
    assert guest.http.get(f"/i/{token}").status_code == 410
    fake.fail_status = None
    assert guest.wait_for(received, ["done", "failed"])["state"] == "done"  # what was received is delivered
    admin.call("PATCH", f"/api/invites/{invite['id']}", json={"disabled": False})
    assert guest.http.get(f"/i/{token}").status_code == 200


def test_delete_removes_undelivered_files(drop, admin_of, fake):
    admin = admin_of(drop)
    invite = admin.invite()
    guest = drop.guest()
    fake.fail_status = 503
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(invite))
    guest.wait_for(uid, "retrying")
    assert admin.call("DELETE", f"/api/invites/{invite['id']}").status_code == 204
    event = guest.wait_for(uid, "failed")
    assert "deleted" in event["message"]
    assert not drop.services.storage.data_path(uid).exists()
    fake.fail_status = None
    assert fake.uploads == [] and admin.call("GET", "/api/invites").json() == []


class Held:
    """Wraps a coroutine method of the running server's store: the first call `arm` names is held
    after the store has done its work (committed, in its thread) until the test lets it go."""

    def __init__(self, monkeypatch, store, name: str, arm):
        self.entered, self.go = threading.Event(), threading.Event()
        original = getattr(store, name)

        async def held(*args, **kwargs):
            result = await original(*args, **kwargs)
            if arm(kwargs) and not self.entered.is_set():
                self.entered.set()
                await asyncio.to_thread(self.go.wait, 60)
            return result

        monkeypatch.setattr(store, name, held)


def test_a_file_delivered_as_its_link_is_deleted_is_told_to_its_guest(drop, admin_of, monkeypatch):
    """CI: the delivery's final state was being written, in its thread, when the link's deletion
    cancelled the attempt: the write landed, the guest never heard it, and `drop`, finding the
    upload ended by then, said nothing either (the guest's file stayed "processing")."""
    admin = admin_of(drop)
    invite = admin.invite()
    guest = drop.guest()
    store, pipeline = drop.services.store, drop.services.pipeline
    original, entered, go, written = store.update_upload, threading.Event(), threading.Event(), threading.Event()

    async def slow_database(uid, **kwargs):
        if kwargs.get("state") == "done" and "held_by" in kwargs:  # the attempt's end: a write a cancel cannot stop
            async def write():
                entered.set()
                await asyncio.to_thread(go.wait, 60)
                try:
                    return await original(uid, **kwargs)
                finally:
                    written.set()
            return await asyncio.shield(asyncio.ensure_future(write()))
        if kwargs.get("state") == "failed":  # `drop`'s own, after the end's write has landed
            await asyncio.to_thread(written.wait, 60)
        return await original(uid, **kwargs)

    monkeypatch.setattr(store, "update_upload", slow_database)
    guest.http.get(f"/i/{invite_token(invite)}")
    guest.watch()  # open, as the guest's page is: what it hears, not what a later look finds
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(invite))
    assert entered.wait(30)  # Immich has the file; its "done" is on its way to the database
    attempt = pipeline._delivering[uid]
    deleting = concurrent.futures.ThreadPoolExecutor(1).submit(admin.call, "DELETE", f"/api/invites/{invite['id']}")
    wait_until(lambda: attempt.cancelling() or attempt.done(), what="the deletion stopping the attempt")
    go.set()
    assert deleting.result(30).status_code == 204
    assert guest.wait_for(uid, ["done", "failed"], timeout=10)["state"] == "done"  # what became of it
    assert [r.filename for r in drop.fake.uploads] == ["exif_offset.jpg"]


def test_a_file_claimed_as_its_link_is_deleted_is_not_said_to_be_sent_after(make_drop, admin_of, fake, monkeypatch):
    """Its claim for a retry was in a thread when the link was deleted: the guest heard the file
    was not delivered, then the attempt's "being sent", and that stayed."""
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", MAX_CONCURRENT="1")
    admin = admin_of(drop)
    invite, other = admin.invite(), admin.invite()
    guest = drop.guest()
    fake.fail_status = 503
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(invite))
    guest.wait_for(uid, "retrying")
    claiming = Held(monkeypatch, drop.services.store, "claim_delivery", lambda kw: True)
    fake.fail_status = None
    assert claiming.entered.wait(30)  # the retry's claim took it ("being sent")
    assert admin.call("DELETE", f"/api/invites/{invite['id']}").status_code == 204
    guest.wait_for(uid, "failed")
    claiming.go.set()
    # the one delivery slot is the held claim's until its attempt (if any) is over: this file's
    # "done" comes after all the first one will ever say
    later = guest.invite_upload(MEDIA / "no_date.jpg", invite_token(other))
    guest.wait_for(later, "done")
    said = [e["state"] for e in guest.events if e.get("id") == uid]
    assert said[said.index("failed"):] == ["failed"], said
    assert [r.filename for r in fake.uploads] == ["no_date.jpg"]


def test_delete_drops_every_undelivered_file_of_a_link_however_many(drop, admin_of):
    # Only the newest 1,000 of the link's uploads were looked at: 9,792 of 10,790 stayed "receiving",
    # their bytes on disk for a day (attack run).
    admin = admin_of(drop)
    invite = admin.invite()
    guest = drop.guest()
    guest.http.get(f"/i/{invite_token(invite)}")
    first = guest.create(100, invite=invite_token(invite)).headers["Location"].rsplit("/", 1)[-1]
    store = drop.services.store
    rows = [Upload(id=uuid.uuid4().hex, session_id="s", target_kind="invite", target_id=invite["id"],
                   filename=f"p{i}.jpg", filetype="image/jpeg", size=100) for i in range(1000)]
    # an attempt had begun sending it; its next one is not due (the scanner would try it, with no file)
    rows[0].state, rows[0].sent_at = "retrying", datetime.now(timezone.utc)
    rows[0].next_attempt_at = datetime.now(timezone.utc) + timedelta(days=1)
    for row in rows:
        drop.server.call(store.add_upload(row))
    assert admin.call("DELETE", f"/api/invites/{invite['id']}").status_code == 204
    assert drop.server.call(store.count_by_state()) == {"failed": 1001}
    assert not drop.services.storage.data_path(first).exists()
    assert drop.upload_row(first).message == drop.upload_row(rows[-1].id).message \
        == "The link was deleted by its owner; this file was not sent."
    assert "may have arrived" in drop.upload_row(rows[0].id).message


def test_delete_during_a_patch_leaves_nothing_of_it_on_disk(make_drop, admin_of):
    # The PATCH went on writing after the deletion removed its files: its append made the data file
    # again and its sidecar was written anew, left for the 24-hour sweep (re-walk).
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", UPLOAD_STALL_SECONDS="600")
    admin = admin_of(drop)
    invite = admin.invite()
    guest = drop.guest()
    guest.http.get(f"/i/{invite_token(invite)}")
    total, mib = 3 * 1024 * 1024, 1024 * 1024
    uid = guest.create(total, "video.mp4", invite=invite_token(invite)).headers["Location"].rsplit("/", 1)[-1]
    data_path, info_path = drop.services.storage.data_path(uid), drop.services.storage.info_path(uid)
    sock = start_patch(drop.url, uid, guest.cookie, total)
    try:
        sock.sendall(SIGNATURES[".mp4"] + b"\0" * (mib + mib // 2 - len(SIGNATURES[".mp4"])))
        wait_until(lambda: data_path.stat().st_size >= mib, what="the first mebibyte on disk")
        assert admin.call("DELETE", f"/api/invites/{invite['id']}").status_code == 204
        assert not data_path.exists()
        assert drop.services.storage.buffered == 0  # the half mebibyte not yet written is let go too
        sock.sendall(b"\0" * (total - mib - mib // 2))
        reply = read_reply(sock)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 404") and b'"link_invalid"' in reply, reply  # as the next PATCH would hear
    assert not data_path.exists() and not info_path.exists()
    assert drop.upload_row(uid).state == "failed"


def test_revoked_key_pauses_until_the_admin_signs_in_again(drop, admin_of, fake):
    admin = admin_of(drop)
    invite = admin.invite(album={"name": "Party"})
    token = invite_token(invite)
    owner = [u for u, user in fake.users.items() if user["email"] == "ada@example.org"][0]
    for key in [k for k, (user, _) in fake.keys.items() if user == owner]:
        fake.revoke(key)  # e.g. the user deleted the key in Immich
    guest = drop.guest()
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", token)
    assert "owner signs in again" in guest.wait_for(uid, "retrying")["message"]
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["ownerMustSignIn"] is True
    assert guest.http.get(f"/api/i/{token}").json()["paused"] is True
    assert guest.create(100, invite=token).status_code == 503
    assert drop.services.storage.data_path(uid).exists()

    assert admin.login(email="ada@example.org", password="correct horse").status_code == 200
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert fake.uploads[0].owner == owner and fake.uploads[0].sha1 == sha1_of(MEDIA / "exif_offset.jpg")
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["ownerMustSignIn"] is False


def test_a_file_stopped_before_its_first_byte_went_is_not_marked_as_sent(drop, admin_of, fake):
    """A small file is marked "being sent" by the claim that follows its last byte. If its attempt
    stops before sending (here: its owner's key was found refused meanwhile), the mark goes back, so
    when the owner signs in again Immich's "duplicate" is the guest's answer, not this upload's own
    asset come back as "done"."""
    admin = admin_of(drop)
    token = invite_token(admin.invite(album={"name": "Party"}))
    owner = [u for u, user in fake.users.items() if user["email"] == "ada@example.org"][0]
    photo = MEDIA / "exif_offset.jpg"
    fake.assets.setdefault(owner, {})[sha1_of(photo)] = from_the_app = str(uuid.uuid4())
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    uploader = guest.uploader(photo, chunk_size=photo.stat().st_size // 2, metadata={"invite": token})
    uploader.upload_chunk()  # created and half sent; then the owner's key is refused elsewhere
    assert drop.server.call(drop.services.store.set_key_valid(owner, False))
    uploader.upload()
    uid = uploader.url.rsplit("/", 1)[-1]
    assert "owner signs in again" in guest.wait_for(uid, "retrying")["message"]
    # read while it waits: the tests retry every 50 ms, and the next attempt's claim marks it again
    # until that attempt stops too (CI read it mid-attempt); the mark must be gone whenever it waits
    rows = []
    wait_until(lambda: rows.append(drop.upload_row(uid)) or rows[-1].state == "retrying", what="a waiting row")
    assert rows[-1].sent_at is None and fake.uploads == []

    assert admin.login(email="ada@example.org", password="correct horse").status_code == 200
    assert guest.wait_for(uid, ["done", "duplicate", "failed"])["state"] == "duplicate"
    assert drop.upload_row(uid).asset_id == from_the_app and fake.uploads == []


def test_two_admins_two_libraries(drop, admin_of, fake):
    ada, bob = admin_of(drop, "ada@example.org"), admin_of(drop, "bob@example.org")
    guest = drop.guest()
    a = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(ada.invite()))
    b = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(bob.invite()))  # same bytes, other owner
    assert guest.wait_for(a, ["done", "failed"])["state"] == "done"
    assert guest.wait_for(b, ["done", "failed"])["state"] == "done"  # not a duplicate: another library
    owners = {user["email"]: u for u, user in fake.users.items()}
    assert sorted(r.owner for r in fake.uploads) == sorted([owners["ada@example.org"], owners["bob@example.org"]])


def test_album_deleted_in_immich_is_made_again_for_the_invite(drop, admin_of, fake):
    admin = admin_of(drop)
    invite = admin.invite(album={"name": "Trip"})
    token = invite_token(invite)
    guest = drop.guest()
    guest.wait_for(guest.invite_upload(MEDIA / "exif_offset.jpg", token), "done")
    fake.delete_album(invite["albumId"])
    guest.wait_for(guest.invite_upload(MEDIA / "no_date.jpg", token), "done")
    new_id = admin.call("GET", f"/api/invites/{invite['id']}").json()["albumId"]
    assert new_id != invite["albumId"] and len(fake.albums[new_id].assets) == 1


def test_existing_album_and_bad_fields(drop, admin_of):
    admin = admin_of(drop)
    album = admin.call("POST", "/api/albums", json={"name": "Existing"}).json()
    assert admin.invite(album={"id": album["id"]})["albumName"] == "Existing"
    for bad, field in [({"album": {"id": "nope"}}, "album"), ({"maxUses": 0}, "maxUses"),
                       ({"maxFiles": "ten"}, "maxFiles"), ({"mediaKind": "audio"}, "mediaKind"),
                       ({"password": "123"}, "password"), ({"expiresAt": "tomorrow"}, "expiresAt"),
                       ({"label": "x" * 201}, "label")]:
        response = admin.call("POST", "/api/invites", json=bad)
        assert response.status_code == 400 and response.json()["message"].startswith(field), bad
        assert list(response.json()["errors"]) == [field], bad


def test_labels_and_names_with_markup_stay_data(drop, admin_of):
    admin = admin_of(drop)
    label = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    invite = admin.invite(label=label)
    info = drop.guest().http.get(f"/api/i/{invite_token(admin.invite(title=label))}")
    assert info.headers["content-type"] == "application/json" and info.json()["title"] == label
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["label"] == label


def test_qr_codes(drop, admin_of):
    admin = admin_of(drop)
    invite = admin.invite()
    svg = admin.call("GET", f"/api/invites/{invite['id']}/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
    png = admin.call("GET", f"/api/invites/{invite['id']}/qr.png")
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and "attachment" in png.headers["content-disposition"]
    # named for the link, so several printed cards can be told apart (owner walk); plain ASCII only;
    # never the label, the owner's alone (a card's file travels with it: owner walk)
    for label, title, name in [("Grandma Rose", "", "invite-{id}.png"),
                               ("Grandma Rose", "Fête de Zoé \"2026\"", "invite-fete-de-zoe-2026-{id}.png"),
                               ("", "Свадьба", "invite-{id}.png")]:
        named = admin.invite(label=label, title=title)
        answer = admin.call("GET", f"/api/invites/{named['id']}/qr.png")
        assert answer.headers["content-disposition"] == f'attachment; filename="{name.format(id=named["id"][:8])}"'
    for other in ("gif", "SVG", "png.svg"):  # qr.gif answered the SVG (attack run)
        assert admin.call("GET", f"/api/invites/{invite['id']}/qr.{other}").status_code == 404, other


def test_the_card_of_a_link_with_a_password_says_one_is_asked(drop, admin_of, monkeypatch):
    """A guest who scanned a printed card met a password form no one had told them of: the card of
    such a link says one is asked, in the console's language (else the browser's), never the password."""
    from PIL import Image

    from immich_drop import i18n, qrcard

    admin = admin_of(drop)
    locked, plain = admin.invite(title="Party", password="open sesame"), admin.invite(title="Party")
    drawn, draw = [], qrcard.card
    monkeypatch.setattr(qrcard, "card", lambda link, title, note="": drawn.append(note) or draw(link, title, note))
    heights = []
    for invite, query, language in ((plain, "", "de"), (locked, "", "en"), (locked, "?lang=de", "fr"),
                                    (locked, "", "fr-CH, en;q=0.5"), (locked, "?lang=xx", "it")):
        answer = admin.call("GET", f"/api/invites/{invite['id']}/qr.png{query}", headers={"Accept-Language": language})
        assert answer.status_code == 200
        heights.append(Image.open(io.BytesIO(answer.content)).height)
    assert drawn == [""] + [i18n.text(lang, "admin.qr.password_note") for lang in ("en", "de", "fr", "it")]
    assert len(set(drawn)) == 5 and not any("open sesame" in note for note in drawn)
    assert heights[1] > heights[0]  # drawn on the card, under the title


def test_links_use_public_base_url(make_drop, fake):
    drop = make_drop(PUBLIC_BASE_URL="https://drop.example.org")
    fake.add_account("ada@example.org", "correct horse")
    admin = Admin(drop.url)
    admin.http.headers["Host"] = "drop.example.org"  # only that host is served now
    assert admin.login(email="ada@example.org", password="correct horse").status_code == 200
    invite = admin.invite()
    assert invite["link"].startswith("https://drop.example.org/i/")


def test_a_name_keeps_its_emoji_joiners_and_loses_its_bidi_overrides(drop, admin_of):
    """👩‍🦰 is two emoji joined by U+200D: the joiner was replaced by a space, so Immich showed two
    emoji (guest walk). A right-to-left override still goes: it would reverse what the owner reads."""
    admin = admin_of(drop)
    token = invite_token(admin.invite())
    guest = drop.guest()
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", token,
                              metadata={"guestName": "Ana \U0001F469\u200d\U0001F9B0", "guestMessage": "hi\u202eevil"})
    guest.wait_for(uid, "done")
    row = drop.upload_row(uid)
    assert (row.guest_name, row.guest_message) == ("Ana \U0001F469\u200d\U0001F9B0", "hi evil")
    assert list(drop.fake.descriptions.values()) == ["From Ana \U0001F469\u200d\U0001F9B0: hi evil"]


def test_the_refusals_log_keeps_the_name_as_an_upload_would(drop, admin_of):
    """A refused attempt's name went into the owner's log raw: on a link that hides names too, with
    a right-to-left override left in (cold review)."""
    admin = admin_of(drop)
    hidden, asking = admin.invite(guestFields="hidden"), admin.invite()
    said = {"guestName": "Visit http://phish.example \u202eevil"}
    guest = drop.guest()
    for invite in (hidden, asking):
        token = invite_token(invite)
        guest.http.get(f"/i/{token}")
        assert guest.create(10, "notes.txt", invite=token, meta=said).status_code == 415
    logged = [admin.call("GET", f"/api/invites/{i['id']}/uploads").json()[0]["guestName"] for i in (hidden, asking)]
    assert logged == ["", "Visit http://phish.example  evil"]


@pytest.mark.parametrize("name", ["   ", "\u200b", "\u200d", "\u200d \u200c"])
def test_a_required_name_is_a_visible_one(drop, admin_of, name):
    """A zero-width space passed "name required" and was kept as no name; a lone joiner (kept since
    joiners belong to emoji and scripts) as an invisible one."""
    token = invite_token(admin_of(drop).invite(guestFields="required"))
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    refused = guest.create(10, "photo.jpg", invite=token, meta={"guestName": name})
    assert refused.status_code == 400 and refused.json()["code"] == "name_required"
    assert guest.create(10, "photo.jpg", invite=token, meta={"guestName": "Ana \u200d"}).status_code == 201


def test_links_made_at_once_with_the_same_new_album_make_one_album(drop, admin_of, fake):
    """Each link's "new" album is found by name first; two made at the same moment could both miss
    and both make one. Also the console's album form."""
    from test_guessing import parallel

    admin = admin_of(drop)
    made = parallel(4, lambda i: admin.invite(album={"name": "Trip"}))
    also = admin.call("POST", "/api/albums", json={"name": "Trip"}).json()
    owner = [u for u, user in fake.users.items() if user["email"] == "ada@example.org"][0]
    [album] = fake.albums_named(owner, "Trip")
    assert {invite["albumId"] for invite in made} == {album.id} == {also["id"]}


def test_a_turned_off_links_page_says_it_may_open_again_and_looks_by_itself(drop, admin_of):
    """Re-walk: a guest who reloaded while files were on hold landed on the closed page, which said
    "ask for a new one" of a link only turned off, and never changed when it was turned on again."""
    admin = admin_of(drop)
    made = admin.invite()
    token = invite_token(made)
    assert admin.call("PATCH", f"/api/invites/{made['id']}", json={"disabled": True}).status_code == 200
    guest = drop.guest()
    off = guest.http.get(f"/i/{token}")
    assert off.status_code == 410 and '<meta http-equiv="refresh" content="20">' in off.text
    assert off.headers["cache-control"] == "no-store"  # a cache keeping it would hide the link turned on
    assert "this page opens by itself" in off.text and "for a new one" not in off.text
    assert admin.call("PATCH", f"/api/invites/{made['id']}", json={"disabled": False}).status_code == 200
    assert guest.http.get(f"/i/{token}").status_code == 200  # what the page finds when it looks again
    once = invite_token(admin.invite(maxUses=1))
    first = drop.guest()
    first.http.get(f"/i/{once}")
    assert first.create(10, invite=once).status_code == 201
    used = drop.guest().http.get(f"/i/{once}")  # for good: no looking again
    assert used.status_code == 410 and "refresh" not in used.text and "for a new one" in used.text
