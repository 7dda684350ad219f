"""Password guessing over real HTTP: limits that hold under parallel bursts, hashing that cannot starve
the rest of the server, an owner an outsider cannot lock out, and a changed link password."""

import asyncio
import concurrent.futures
import os
import threading

import pytest

from conftest import Admin, invite_token


def parallel(n, fn):
    """Run `fn(i)` for i in range(n) on n threads released together; their results, in order."""
    start = threading.Barrier(n)

    def run(i):
        start.wait()
        return fn(i)

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_a_parallel_burst_of_sign_ins_cannot_exceed_the_limit(drop, fake):
    fake.add_account("ada@example.org", "correct horse")
    fake.delay = 0.3  # Immich answers slowly: the whole burst arrives while the first ones wait
    admins = [Admin(drop.url) for _ in range(30)]
    statuses = parallel(30, lambda i: admins[i].login(email="ada@example.org",
                                                      password="correct horse" if i == 29 else f"guess {i}").status_code)
    reached = [r for r in fake.requests if r == ("POST", "/api/auth/login")]
    assert len(reached) <= 5, (len(reached), statuses)
    assert statuses.count(429) >= 25
    for admin in admins:
        admin.close()


@pytest.fixture
def proxied(make_drop):
    """A drop behind a trusted proxy, so tests can speak from many addresses (X-Forwarded-For)."""
    return make_drop(TRUSTED_PROXIES="127.0.0.1/32", PUBLIC_UPLOAD_PAGE_ENABLED="false")


def login_from(drop, address, email, password):
    with Admin(drop.url) as admin:
        return admin.http.post("/api/login", json={"email": email, "password": password},
                               headers={"X-Forwarded-For": address})


def test_an_outsider_cannot_lock_the_owner_out(proxied, fake):
    fake.add_account("ada@example.org", "correct horse")
    assert login_from(proxied, "198.51.100.7", "ada@example.org", "correct horse").status_code == 200  # at home
    # An outsider guesses from many addresses, far past every per-account limit.
    for n in range(30):
        for _ in range(5):
            login_from(proxied, f"203.0.113.{n}", "ada@example.org", "wrong")
    assert login_from(proxied, "203.0.113.99", "ada@example.org", "wrong").status_code == 429  # guessing stops
    assert login_from(proxied, "198.51.100.7", "ada@example.org", "correct horse").status_code == 200  # Ada gets in
    # And wrong passwords from one address never hold the same account at another.
    for _ in range(5):
        login_from(proxied, "192.0.2.1", "bob@example.org", "wrong")
    assert login_from(proxied, "192.0.2.1", "bob@example.org", "wrong").status_code == 429
    fake.add_account("bob@example.org", "bob's password")
    assert login_from(proxied, "192.0.2.2", "bob@example.org", "bob's password").status_code == 200


def test_guesses_from_the_owners_own_network_do_not_lock_the_owner_out(proxied, fake):
    """Attack run: 20 wrong sign-ins on random accounts from one address (a shared Wi-Fi, a NAT) gave
    the owner 429 there for 15 minutes, though the owner had signed in from it before."""
    fake.add_account("ada@example.org", "correct horse")
    assert login_from(proxied, "198.51.100.7", "ada@example.org", "correct horse").status_code == 200
    for n in range(25):
        login_from(proxied, "198.51.100.7", f"someone{n}@example.org", "wrong")
    assert login_from(proxied, "198.51.100.7", "eve@example.org", "wrong").status_code == 429  # the address is held
    assert login_from(proxied, "198.51.100.7", "ada@example.org", "correct horse").status_code == 200  # not for Ada
    for _ in range(5):  # whose own account there still takes five wrong passwords at most
        login_from(proxied, "198.51.100.7", "ada@example.org", "wrong")
    assert login_from(proxied, "198.51.100.7", "ada@example.org", "correct horse").status_code == 429


def test_guesses_from_one_ipv6_64_count_as_one_address(proxied, fake):
    """An IPv6 host picks freely from its /64: a wrong sign-in from each of its addresses was a fresh
    count each time (probe). They count as one address; the next /64 is another."""
    for n in range(25):
        login_from(proxied, f"2001:db8:0:9::{n:x}", f"someone{n}@example.org", "wrong")
    assert login_from(proxied, "2001:db8:0:9::ffff", "eve@example.org", "wrong").status_code == 429
    assert login_from(proxied, "2001:db8:0:a::1", "eve@example.org", "wrong").status_code == 401


@pytest.fixture
def locked_invite(make_drop, admin_of):
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = admin_of(drop)
    invite = admin.invite(password="open sesame")
    return drop, admin, invite, invite_token(invite)


def test_a_parallel_burst_of_link_passwords_cannot_exceed_the_limit(locked_invite):
    drop, _, _, token = locked_invite
    guests = [drop.guest() for _ in range(40)]
    for guest in guests:
        guest.http.get(f"/i/{token}")
    answers = parallel(40, lambda i: guests[i].http.post(f"/api/i/{token}/unlock", json={"password": f"guess {i}"}))
    assert sum(a.status_code == 401 for a in answers) <= 10
    assert all(a.status_code in (401, 429) for a in answers)
    assert all(a.json()["code"] in ("too_many_attempts", "passwords_busy") for a in answers if a.status_code == 429)


def test_hashing_has_threads_of_its_own_and_refuses_beyond_them(locked_invite):
    drop, _, _, token = locked_invite
    hasher, release = drop.services.hasher, threading.Event()

    async def fill():  # every hashing slot taken by a hash that does not end until released
        loop = asyncio.get_running_loop()
        return [loop.create_task(hasher.run(release.wait, 30)) for _ in range(hasher.capacity)]

    held = drop.server.call(fill())
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    try:
        busy = guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"})
        assert busy.status_code == 429 and busy.json()["code"] == "passwords_busy" and busy.headers["Retry-After"]
        # Meanwhile the database and file threads serve everyone else.
        assert guest.http.get(f"/api/i/{token}").status_code == 200
        assert guest.create(10, invite=token).status_code == 401  # a query and a file check, not stuck
    finally:
        release.set()
    drop.server.call(asyncio.wait(held))
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"}).status_code == 204


def test_a_changed_password_locks_browsers_that_used_the_old_one(locked_invite):
    drop, admin, invite, token = locked_invite
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"}).status_code == 204
    begun = guest.create(10, invite=token)
    assert begun.status_code == 201
    patch = {"Content-Type": "application/offset+octet-stream"}
    assert guest.http.patch(begun.headers["Location"], content=b"\xff\xd8\xff\xe0ab",
                            headers=guest.tus_headers(**{"Upload-Offset": "0", **patch})).status_code == 204
    assert admin.call("PATCH", f"/api/invites/{invite['id']}", json={"password": "new secret"}).status_code == 200
    assert guest.http.get(f"/api/i/{token}").json()["unlocked"] is False
    assert guest.create(10, invite=token).status_code == 401
    # nor does a file on its way go on under the old one (it did, to the end: attack run); it is kept
    refused = guest.http.patch(begun.headers["Location"], content=b"cdef",
                               headers=guest.tus_headers(**{"Upload-Offset": "6", **patch}))
    assert refused.status_code == 401 and refused.json()["code"] == "needs_password"
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"}).status_code == 401
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "new secret"}).status_code == 204
    assert guest.create(10, invite=token).status_code == 201
    assert guest.http.patch(begun.headers["Location"], content=b"cdef",
                            headers=guest.tus_headers(**{"Upload-Offset": "6", **patch})).status_code == 204


def test_a_new_password_is_not_held_by_the_tries_at_the_old_one(locked_invite):
    """Ten wrong tries held the address for 15 minutes, the right password refused too: as they
    should. The owner then set a new password and sent it; the family was still held out (probe).
    The tries count against the password they were made at."""
    drop, admin, invite, token = locked_invite
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    answers = [guest.http.post(f"/api/i/{token}/unlock", json={"password": f"guess {i}"}) for i in range(10)]
    assert [a.status_code for a in answers] == [401] * 10
    assert [a.json()["code"] for a in answers[-4:]] == ["wrong_password_few"] * 3 + ["wrong_password_wait"]
    assert [a.json()["params"].get("count") for a in answers[-4:-1]] == [3, 2, 1]
    assert 800 < answers[-1].json()["params"]["wait"] <= 900
    held = guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"})
    assert held.status_code == 429 and held.json()["code"] == "too_many_attempts"
    assert admin.call("PATCH", f"/api/invites/{invite['id']}", json={"password": "new secret"}).status_code == 200
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "new secret"}).status_code == 204


def test_a_parallel_burst_against_the_real_immich_gets_five_answers(make_real_drop):
    drop = make_real_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    email = f"nobody-{os.urandom(4).hex()}@example.org"  # no account of the peer is touched
    admins = [Admin(drop.url) for _ in range(20)]
    statuses = parallel(20, lambda i: admins[i].login(email=email, password=f"guess {i}").status_code)
    assert sorted(statuses) == [401] * 5 + [429] * 15  # a 401 is Immich's own answer: five reached it
    for admin in admins:
        admin.close()
