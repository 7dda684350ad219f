"""Room for new uploads: the quotas per browser and per address (public page, invite links), under
parallel bursts, and the staging disk's free space (public page and invites alike), over real HTTP."""

import os
import shutil
import time

import pytest

from conftest import SIGNATURES, invite_token
from test_guessing import parallel

GiB = 1024**3


def test_unfinished_uploads_per_browser_hold_under_a_burst(make_drop):
    drop = make_drop(PUBLIC_PENDING_FILES="3")
    guest = drop.guest()
    answers = parallel(12, lambda i: guest.create(100, f"p{i}.jpg"))
    assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 9
    refused = guest.create(100)
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_unfinished"
    assert "Let them finish" in refused.json()["message"]
    # Another browser has its own allowance; one finished or cancelled upload makes room again.
    assert drop.guest().create(100).status_code == 201
    first = next(a.headers["Location"] for a in answers if a.status_code == 201)
    assert guest.http.delete(first, headers=guest.tus_headers()).status_code == 204
    assert guest.create(100).status_code == 201


def test_announced_bytes_per_browser(make_drop):
    drop = make_drop(PUBLIC_PENDING_BYTES="1000")
    guest = drop.guest()
    assert guest.create(600).status_code == 201
    assert guest.create(600).status_code == 429
    assert guest.create(400).status_code == 201


def test_unfinished_uploads_per_address(make_drop):
    drop = make_drop(PUBLIC_PENDING_FILES_PER_ADDRESS="4", PUBLIC_PENDING_BYTES_PER_ADDRESS="1000000")
    guests = [drop.guest() for _ in range(3)]  # three browsers behind one address
    statuses = parallel(9, lambda i: guests[i % 3].create(100, f"p{i}.jpg").status_code)
    assert sorted(statuses) == [201] * 4 + [429] * 5


def test_an_ipv6_address_counts_by_its_64(make_drop):
    """One host picks freely from a whole /64: counted by single addresses, it had a new allowance of
    unfinished uploads (and of the staging disk) with every address it made up (probe)."""
    drop = make_drop(PUBLIC_PENDING_FILES_PER_ADDRESS="2", TRUSTED_PROXIES="127.0.0.1/32")
    answers = [drop.guest().create(100, f"p{n}.jpg", **{"X-Forwarded-For": f"2001:db8:0:7::{n}"}) for n in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 429, 429]
    assert answers[2].json()["code"] == "too_many_unfinished"
    assert drop.guest().create(100, **{"X-Forwarded-For": "2001:db8:0:8::1"}).status_code == 201  # the next /64


def opened(drop, token):
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    return guest


def test_a_guest_with_a_link_has_a_quota_of_unfinished_uploads_over_all_links(make_drop, admin_of):
    # A link with no total limit let a guest announce files the size of the free disk and keep them
    # alive with a byte now and then: every other upload was refused 507 (attack run).
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", INVITE_PENDING_FILES="3")
    admin = admin_of(drop)
    first, second = invite_token(admin.invite()), invite_token(admin.invite())
    guest = opened(drop, first)
    guest.http.get(f"/i/{second}")
    answers = parallel(8, lambda i: guest.create(100, f"p{i}.jpg", invite=(first, second)[i % 2]))
    assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 5
    refused = guest.create(100, invite=second)
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_unfinished"
    assert opened(drop, second).create(100, invite=second).status_code == 201  # another browser: its own quota
    # One finished upload makes room again.
    done = next(a.headers["Location"] for a in answers if a.status_code == 201)
    sent = guest.http.patch(done, content=SIGNATURES[".jpg"] + b"\0" * 96, headers=guest.tus_headers(
        **{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
    assert sent.status_code == 204
    assert guest.create(100, invite=first).status_code == 201
    assert guest.create(100, invite=first).status_code == 429


def test_an_address_has_a_quota_of_announced_bytes_through_links(make_drop, admin_of):
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", INVITE_PENDING_BYTES_PER_ADDRESS="1000")
    token = invite_token(admin_of(drop).invite())
    guests = [opened(drop, token) for _ in range(3)]  # three browsers behind one address
    statuses = parallel(6, lambda i: guests[i % 3].create(300, f"p{i}.jpg", invite=token).status_code)
    assert sorted(statuses) == [201] * 3 + [429] * 3
    assert guests[0].create(100, invite=token).status_code == 201  # what is left fits


def test_an_upload_left_idle_for_ten_minutes_holds_no_bytes_of_the_quota(make_drop, admin_of):
    # A reload leaves the uploads it interrupted: a guest's next files must not wait on them for a day.
    # Each still counts as a file, so a guest cannot make new ones without end every ten minutes.
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", INVITE_PENDING_BYTES="1000", INVITE_PENDING_FILES="2")
    token = invite_token(admin_of(drop).invite())
    guest = opened(drop, token)
    left = guest.create(900, invite=token)
    assert left.status_code == 201
    assert guest.create(200, invite=token).status_code == 429  # 1,100 bytes on their way
    staged = drop.services.storage.data_path(left.headers["Location"].rsplit("/", 1)[-1])
    nine, eleven = time.time() - 9 * 60, time.time() - 11 * 60
    os.utime(staged, (nine, nine))
    assert guest.create(200, invite=token).status_code == 429
    os.utime(staged, (eleven, eleven))
    assert guest.create(200, invite=token).status_code == 201
    assert guest.create(100, invite=token).status_code == 429  # as a file it still counts: rows stay bounded


def test_a_file_larger_than_the_bytes_allowed_at_once_is_refused_for_good(make_drop, admin_of):
    # It could never start: answered "too many on their way", the page would wait for ever.
    drop = make_drop(INVITE_PENDING_BYTES="1000", PUBLIC_PENDING_BYTES_PER_ADDRESS="2000")
    token = invite_token(admin_of(drop).invite())
    guest = opened(drop, token)
    refused = guest.create(1001, invite=token)
    assert refused.status_code == 413 and refused.json()["code"] == "too_large"
    assert refused.json()["params"] == {"size": 1000}
    assert guest.create(1000, invite=token).status_code == 201
    public = guest.create(2001)
    assert public.status_code == 413 and public.json()["params"] == {"size": 2000}


def test_public_and_link_uploads_have_quotas_of_their_own(make_drop, admin_of):
    drop = make_drop(INVITE_PENDING_FILES="1", PUBLIC_PENDING_FILES="1", INVITE_PENDING_FILES_PER_ADDRESS="2")
    token = invite_token(admin_of(drop).invite())
    guest = opened(drop, token)
    assert guest.create(100, invite=token).status_code == 201
    assert guest.create(100).status_code == 201  # the public page: its own count
    assert guest.create(100).status_code == 429 and guest.create(100, invite=token).status_code == 429
    assert opened(drop, token).create(100, invite=token).status_code == 201  # a second browser, same address
    assert opened(drop, token).create(100, invite=token).status_code == 429  # the address's two are taken


def test_a_file_the_staging_disk_cannot_hold_is_refused(make_drop, tmp_path):
    drop = make_drop(MAX_UPLOAD_SIZE="1000TiB", MIN_FREE_SPACE="0", PUBLIC_PENDING_BYTES="1000TiB",
                     PUBLIC_PENDING_BYTES_PER_ADDRESS="1000TiB")
    free = shutil.disk_usage(tmp_path).free  # the same disk as DATA_DIR
    guest = drop.guest()
    refused = guest.create(free + 1024 * 1024 * 1024)
    assert refused.status_code == 507 and refused.json()["code"] == "no_space"
    assert "Your other files are safe" in refused.json()["message"]
    assert guest.create(1000).status_code == 201


def test_invites_get_the_disk_check_and_give_their_reservation_back(make_drop, admin_of):
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", MIN_FREE_SPACE="1000TiB")  # a margin no disk has
    admin = admin_of(drop)
    invite = admin.invite(maxFiles=1)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    refused = guest.create(100, invite=token)
    assert refused.status_code == 507 and refused.json()["code"] == "no_space"
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["files"] == 0  # the one file is still free


def test_an_announced_size_never_sent_stops_holding_the_disk_after_ten_minutes(make_drop, admin_of, tmp_path):
    """A guest with a link announced files the size of the free disk and sent nothing: every other
    upload was refused (507) for the 24 hours until expiry (attack run). A staged file that has not
    grown for ten minutes no longer holds its announced bytes; the upload itself can still go on."""
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", MAX_UPLOAD_SIZE="1000TiB", MIN_FREE_SPACE="0",
                     INVITE_PENDING_BYTES="1000TiB", INVITE_PENDING_BYTES_PER_ADDRESS="1000TiB")
    token = invite_token(admin_of(drop).invite())
    hog, other = drop.guest(), drop.guest()
    hog.http.get(f"/i/{token}")
    other.http.get(f"/i/{token}")
    free = shutil.disk_usage(tmp_path).free
    held = hog.create(free - GiB, "huge.mp4", invite=token)  # margins of a GiB: other tests come and go
    assert held.status_code == 201
    # (both from 127.0.0.1: the hog's address holds three quarters, and this one shares it: 429)
    assert other.create(2 * GiB, "video.mp4", invite=token).status_code == 429
    staged = drop.services.storage.data_path(held.headers["Location"].rsplit("/", 1)[-1])
    nine, eleven = time.time() - 9 * 60, time.time() - 11 * 60
    os.utime(staged, (nine, nine))  # idle, but not for long
    assert other.create(2 * GiB, "video.mp4", invite=token).status_code == 429
    os.utime(staged, (eleven, eleven))
    assert other.create(2 * GiB, "video.mp4", invite=token).status_code == 201
    resumed = hog.http.head(held.headers["Location"], headers=hog.tus_headers())
    assert resumed.status_code == 200 and resumed.headers["Upload-Offset"] == "0"


def test_a_patch_that_would_eat_into_the_disks_reserve_is_refused_and_writes_nothing(make_drop):
    """With reservations that lapse, an upload may resume when the disk has filled meanwhile: its
    PATCH hears 507 (the page keeps trying) instead of writing the disk past MIN_FREE_SPACE."""
    drop = make_drop(MIN_FREE_SPACE="0")
    guest = drop.guest()
    location = guest.create(1000, "photo.jpg").headers["Location"]
    body = SIGNATURES[".jpg"] + b"\0" * 996
    headers = guest.tus_headers(**{"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
    object.__setattr__(drop.services.settings, "min_free_space", 2**60)  # the disk "filled"
    refused = guest.http.patch(location, content=body, headers=headers)
    assert refused.status_code == 507 and refused.json()["code"] == "no_space"
    assert guest.http.head(location, headers=guest.tus_headers()).headers["Upload-Offset"] == "0"
    object.__setattr__(drop.services.settings, "min_free_space", 0)
    assert guest.http.patch(location, content=body, headers=headers).status_code == 204


def test_one_address_holds_at_most_three_quarters_of_the_disk(make_drop, admin_of, tmp_path):
    """Attack run: one browser announced a file of the free disk's size (and another), sent a byte now
    and then, and every other guest heard 507. Its first file may be as large as the disk allows (a
    guest's one long video), but it holds three quarters; the rest is for others, and its next file
    waits (429) until what it owes leaves room."""
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", MAX_UPLOAD_SIZE="1000TiB", MIN_FREE_SPACE="0",
                     INVITE_PENDING_BYTES="1000TiB", INVITE_PENDING_BYTES_PER_ADDRESS="1000TiB",
                     TRUSTED_PROXIES="127.0.0.1/32")
    token = invite_token(admin_of(drop).invite())
    hog, other = drop.guest(), drop.guest()
    hog.http.get(f"/i/{token}")
    other.http.get(f"/i/{token}")
    here, there = {"X-Forwarded-For": "203.0.113.5"}, {"X-Forwarded-For": "198.51.100.9"}
    free = shutil.disk_usage(tmp_path).free
    if free < 8 * GiB:
        pytest.skip(f"announces most of the staging disk's free space: needs 8 GiB, has {free / GiB:.1f}")
    margin = free // 16  # other tests write to the same disk meanwhile
    held = hog.create(free - margin, "huge.mp4", invite=token, **here)
    assert held.status_code == 201  # the first: as large as the disk allows
    assert other.create(free // 8, "video.mp4", invite=token, **there).status_code == 201  # a quarter is theirs
    more = hog.create(10 * 1024 * 1024, "photo.jpg", invite=token, **here)
    assert more.status_code == 429 and more.json()["code"] == "too_many_unfinished"  # the hog's next waits
    staged = drop.services.storage.data_path(held.headers["Location"].rsplit("/", 1)[-1])
    eleven = time.time() - 11 * 60
    os.utime(staged, (eleven, eleven))  # idle for ten minutes: it owes nothing now
    assert hog.create(10 * 1024 * 1024, "photo.jpg", invite=token, **here).status_code == 201
