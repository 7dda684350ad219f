"""Owner notifications through a real Apprise, sent to a receiver on 127.0.0.1: addresses stored
sealed, the test button, one digest per link once it settles (never one per file), and notices when a
link is used up or expires and when Immich refuses the owner's key."""

import queue
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import MEDIA, Admin, ServerThread, invite_token, wait_until


class Receiver:
    """A small HTTP service that takes Apprise's json:// posts; `next()` waits for the next one."""

    def __init__(self):
        self.messages: queue.Queue = queue.Queue()
        self.received: list[dict] = []
        self.status = 200

        async def take(request: Request):
            body = await request.json()
            self.received.append(body)
            self.messages.put(body)
            return JSONResponse({}, status_code=self.status)

        self.server = ServerThread(Starlette(routes=[Route("/{path:path}", take, methods=["POST"])]))
        self.url = f"json://127.0.0.1:{self.server.port}/hook?secret-token=s3cr3t"

    def next(self, timeout: float = 30) -> dict:
        return self.messages.get(timeout=timeout)


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.stop()


@pytest.fixture
def drop(make_drop):
    return make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", NOTIFY_SETTLE_SECONDS="0.5", NOTIFY_CHECK_SECONDS="0.2")


def with_address(drop, admin_of, receiver, email="ada@example.org"):
    admin = admin_of(drop, email)
    added = admin.call("POST", "/api/notifications", json={"url": receiver.url})
    assert added.status_code == 201, added.text
    return admin


def test_addresses_are_checked_sealed_masked_and_tested(drop, admin_of, receiver):
    admin = admin_of(drop)
    refused = admin.call("POST", "/api/notifications", json={"url": "nonsense://nowhere"})
    assert refused.status_code == 400 and refused.json()["errors"]["url"]["code"] == "notify_url_invalid"
    # a service Apprise knows, refused for the rest of the address: Apprise's reason, not the hint
    # to write json:// for a web address, which every refusal gave (owner walk)
    refused = admin.call("POST", "/api/notifications", json={"url": "mailto://user:pass@127.0.0.1:1"})
    error = refused.json()["errors"]["url"]
    assert refused.status_code == 400 and error["code"] == "notify_url_refused" and "json://" not in error["message"]
    assert error["params"] == {"reason": "Invalid ~From~ email specified: Apprise <user@127.0.0.1>"}
    assert admin.call("POST", "/api/notifications/test").status_code == 400  # nothing to test yet
    assert admin.call("POST", "/api/notifications", json={"url": receiver.url}).status_code == 201
    [shown] = admin.call("GET", "/api/notifications").json()["urls"]
    assert shown["shown"].startswith("json://127.0.0.1") and "s3cr3t" not in shown["shown"]
    with drop.services.store.engine.connect() as conn:
        stored = conn.execute(sa.text("select notify_urls_enc from account")).scalar_one()
    assert stored and "127.0.0.1" not in stored  # sealed at rest
    assert admin.call("POST", "/api/notifications/test").json()["sent"] is True
    assert "test message" in receiver.next()["message"]
    receiver.status = 500
    assert admin.call("POST", "/api/notifications/test").status_code == 502  # the service said no: the admin hears it
    assert admin.call("DELETE", "/api/notifications/0").json()["urls"] == []


def test_an_address_is_listed_once_shortly_and_a_failed_test_names_it(drop, admin_of, receiver):
    """Owner walk: "ntfy://" was listed as "ntfys://?priority=default&mode=cloud&image=yes&...", the same
    address could be added twice (each test then arrived twice), and with one bad address among good
    ones the test said only that "a service" refused it."""
    admin = admin_of(drop)
    broken = Receiver()
    try:
        assert admin.call("POST", "/api/notifications", json={"url": receiver.url}).status_code == 201
        for again in (" " + receiver.url, receiver.url.replace("json://", "JSON://"), receiver.url + "/",
                      receiver.url.replace("json://", "JSON://") + "/"):  # (a trailing slash: owner walk)
            twice = admin.call("POST", "/api/notifications", json={"url": again})
            assert twice.status_code == 400 and twice.json()["errors"]["url"]["code"] == "notify_url_twice", again
        assert admin.call("POST", "/api/notifications", json={"url": "ntfy://ntfy.example/party"}).status_code == 201
        again = admin.call("POST", "/api/notifications", json={"url": "NTFY://ntfy.example/party/"})  # the same topic
        assert again.status_code == 400 and again.json()["errors"]["url"]["code"] == "notify_url_twice"
        assert admin.call("POST", "/api/notifications", json={"url": broken.url.replace("/hook", "/broken")}).status_code == 201
        shown = [u["shown"] for u in admin.call("GET", "/api/notifications").json()["urls"]]
        assert shown[1] == "ntfy://ntfy.example/party" and all("?" not in u for u in shown)
        admin.call("DELETE", "/api/notifications/1")  # (no ntfy here to send to)
        broken.status = 500
        refused = admin.call("POST", "/api/notifications/test")
        assert refused.status_code == 502 and refused.json()["params"] == {"addresses": shown[2]}
        assert "test message" in receiver.next()["message"] and len(receiver.received) == 1  # the good one got it, once
    finally:
        broken.server.stop()


def test_one_digest_per_link_once_uploads_settle_then_a_notice_when_it_expires(drop, admin_of, receiver):
    admin = with_address(drop, admin_of, receiver)
    invite = admin.invite(label="private", title="Wedding")
    token = invite_token(invite)
    guest = drop.guest()
    sent = [("exif_offset.jpg", "Anna"), ("no_date.jpg", "Ben"), ("creation_time.mp4", "Anna"), ("exif_offset.heic", "Cleo")]
    uids = [guest.invite_upload(MEDIA / name, token, metadata={"guestName": who}) for name, who in sent]
    for uid in uids:
        assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    digest = receiver.next()
    assert digest["title"] == "New files for Wedding"
    assert digest["message"] == "Anna and 2 others sent 3 photos and 1 video to Wedding."
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    drop.server.call(drop.services.store.update_invite(invite["id"], expires_at=past))
    expired = receiver.next()
    assert expired["title"] == "Wedding has expired" and "4 files" in expired["message"]
    assert len(receiver.received) == 2  # the four files made one message, and the expiry one more


def test_the_console_is_told_when_a_notification_did_not_arrive(drop, admin_of, receiver):
    """Owner walk: every digest failed (the server's log said so) and the console said nothing. The
    addresses the last one did not reach are listed, masked, with its time, until a message reaches
    them all: a test that does (as the line asks), or the address removed (cold review)."""
    admin = with_address(drop, admin_of, receiver)

    def last_failure():
        return admin.call("GET", "/api/notifications").json()["lastFailure"]

    assert last_failure() is None
    guest = drop.guest()
    for title, photo in (("Party", "exif_offset.jpg"), ("Brunch", "no_date.jpg")):
        receiver.status = 500
        uid = guest.invite_upload(MEDIA / photo, invite_token(admin.invite(title=title)))
        assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
        assert title in receiver.next()["title"]
        wait_until(last_failure, what="the failure recorded")
        listed = admin.call("GET", "/api/notifications").json()
        assert listed["lastFailure"]["addresses"] == [listed["urls"][0]["shown"]]
        assert "s3cr3t" not in str(listed) and datetime.fromisoformat(listed["lastFailure"]["at"]).tzinfo is not None
        receiver.status = 200
        if title == "Party":  # a test that reaches every address clears it
            assert admin.call("POST", "/api/notifications/test").json() == {"sent": True, "lastFailure": None}
            assert "test message" in receiver.next()["message"]
        else:  # and so does removing the address it names
            assert admin.call("DELETE", "/api/notifications/0").json() == {"urls": [], "lastFailure": None}
        assert last_failure() is None


def test_a_notice_when_a_link_is_used_up_and_when_immich_refuses_the_key(drop, admin_of, receiver, fake):
    admin = with_address(drop, admin_of, receiver)
    once = admin.invite(title="Grandma", maxUses=1)
    guest = drop.guest()
    guest.http.get(f"/i/{invite_token(once)}")
    assert guest.create(100, invite=invite_token(once)).status_code == 201  # the first browser takes the one use
    used = receiver.next()
    assert used["title"] == "Grandma is used up"
    # the browser that used it goes on: "nobody else can open it" alone read as if it could not
    assert used["message"] == ("Your link Grandma has been used by 1 browser: that browser can still send files, "
                               "nobody else can open it.")
    owner = [u for u, user in fake.users.items() if user["email"] == "ada@example.org"][0]
    for key in [k for k, (user, _) in fake.keys.items() if user == owner]:
        fake.revoke(key)
    other = admin.invite(title="Party")
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(other))
    guest.wait_for(uid, "retrying")
    refused = receiver.next()
    assert refused["title"] == "Immich Drop cannot deliver" and "sign in" in refused["message"]
    wait_until(lambda: drop.upload_row(uid).attempts >= 4, what="more delivery attempts")
    assert receiver.messages.empty()  # tried again and again, told once


def test_a_link_whose_files_are_all_taken_is_full_and_its_owner_told_once_one_finishes(make_drop, admin_of, receiver):
    # A link of 3 files that took them all still said "active", and its owner heard nothing. Told as
    # its place was reserved, the owner heard "full" for a creation refused a moment later (cold review).
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", NOTIFY_SETTLE_SECONDS="0.5", INVITE_PENDING_FILES="2")
    admin = with_address(drop, admin_of, receiver)
    invite = admin.invite(title="Bake-off", maxFiles=3)
    token, guest = invite_token(invite), drop.guest()
    guest.http.get(f"/i/{token}")
    state = lambda: admin.call("GET", f"/api/invites/{invite['id']}").json()["state"]
    waiting = [guest.create(100, invite=token) for _ in range(2)]
    assert [w.status_code for w in waiting] == [201, 201] and state() == "active"
    assert guest.create(100, invite=token).status_code == 429  # its place was reserved, then given back
    assert state() == "active"
    for w in waiting:
        assert guest.http.delete(w.headers["Location"], headers=guest.tus_headers()).status_code == 204
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", token)
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert receiver.next()["title"] == "New files for Bake-off"  # no "full" before it
    for name in ("no_date.jpg", "creation_time.mp4"):
        uid = guest.invite_upload(MEDIA / name, token)
        assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    assert state() == "full"
    titles = [receiver.next()["title"]]
    while "Bake-off is full" not in titles:
        titles.append(receiver.next()["title"])
    assert set(titles) <= {"Bake-off is full", "New files for Bake-off"}
    full = [m for m in receiver.received if m["title"] == "Bake-off is full"]
    assert [m["message"] for m in full] == ["Your link Bake-off has reached its limit: guests can send no more files. "
                                            "Raise the limit in the console to take more."]


def test_a_german_speaking_owner_hears_in_german(make_drop, fake, receiver):
    """The owner's language (stored at sign-in, here from the browser's Accept-Language) writes every
    notice: the test message and the digest, whose verb agrees with its two senders. (The link settles
    after 3 s here, not 0.5: on a loaded CI machine Ben's video came more than 0.5 s after Anna's photo
    was delivered, and each had a digest of its own.)"""
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", NOTIFY_SETTLE_SECONDS="3", NOTIFY_CHECK_SECONDS="0.2")
    fake.add_account("greta@example.org", "correct horse")
    with Admin(drop.url) as admin:
        admin.http.headers["Accept-Language"] = "de-DE,de;q=0.9,en;q=0.5"
        assert admin.login(email="greta@example.org", password="correct horse").status_code == 200
        assert admin.call("POST", "/api/notifications", json={"url": receiver.url}).status_code == 201
        assert admin.call("POST", "/api/notifications/test").json()["sent"] is True
        assert receiver.next()["message"] == "Eine Testnachricht von Immich Drop: Benachrichtigungen erreichen dich hier."
        token = invite_token(admin.invite(title="Hochzeit"))
    guest = drop.guest()
    uids = [guest.invite_upload(MEDIA / name, token, metadata={"guestName": who})
            for name, who in [("exif_offset.jpg", "Anna"), ("creation_time.mp4", "Ben")]]
    for uid in uids:
        assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    digest = receiver.next()
    assert digest["title"] == "Neue Dateien für Hochzeit"
    assert digest["message"] == "Anna und Ben haben 1 Foto und 1 Video an Hochzeit geschickt."


def test_signing_in_again_keeps_the_owners_addresses(drop, admin_of, receiver):
    with_address(drop, admin_of, receiver)
    with Admin(drop.url) as again:
        assert again.login(email="ada@example.org", password="correct horse").status_code == 200
        assert [u["shown"][:17] for u in again.call("GET", "/api/notifications").json()["urls"]] == ["json://127.0.0.1:"]
        assert again.call("POST", "/api/notifications/test").json()["sent"] is True


@pytest.mark.parametrize("url", ["ntfy://ntfy.sh/hochzeit-müller", "ntfys://ntfy.example.org/fête", "ntfy://ntfy.sh/🎉",
                                 "ntfy://ntfy.sh/party/🎉", "ntfy://ntfy.sh/"])
def test_an_ntfy_address_whose_topic_apprise_would_drop_is_refused(drop, admin_of, url):
    """Owner walk: Apprise takes these and drops the topic (only letters, digits, - and _), so the
    address was listed as "ntfy://ntfy.sh/" and every notice went nowhere without a word."""
    admin = admin_of(drop)
    refused = admin.call("POST", "/api/notifications", json={"url": url})
    assert refused.status_code == 400 and refused.json()["errors"]["url"]["code"] == "notify_topic_invalid", refused.text
    assert admin.call("GET", "/api/notifications").json()["urls"] == []
    assert admin.call("POST", "/api/notifications", json={"url": "ntfy://ntfy.sh/hochzeit-mueller_2026"}).status_code == 201


@pytest.mark.parametrize("url", ["ntfy://ntfy.sh/hochzeit mueller", "ntfy://ntfy.sh/hochzeit%20mueller",
                                 "ntfy://ntfy.sh/a ntfy://ntfy.sh/b",
                                 "json://127.0.0.1:9/x\tjson://127.0.0.1:9/y"])
def test_an_address_with_a_space_is_refused(drop, admin_of, url):
    """Re-walk: "ntfy://ntfy.sh/hochzeit mueller" was kept as two topics, the first of them the public
    topic "hochzeit" on ntfy.sh; two URLs on one line made two services listed as one."""
    admin = admin_of(drop)
    refused = admin.call("POST", "/api/notifications", json={"url": url})
    assert refused.status_code == 400 and refused.json()["errors"]["url"]["code"] == "notify_url_space", refused.text
    assert admin.call("GET", "/api/notifications").json()["urls"] == []


@pytest.mark.parametrize("url", ["sns://AKIAIOSFODNN7EXAMPLE/wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY/us-west-2/+12223334444",
                                 "ntfy://ntfy.sh/party/party"])
def test_addresses_of_other_services_with_topics_are_not_taken_for_ntfy(drop, admin_of, url):
    """Cold review: the topic check read any plugin's "topics", and refused an SNS address that sends
    text messages only (its topics are one kind of target among others); a topic named twice is one."""
    admin = admin_of(drop)
    assert admin.call("POST", "/api/notifications", json={"url": url}).status_code == 201


def test_addresses_added_and_removed_at_once_are_each_kept_or_refused(drop, admin_of):
    """Attack run: two tabs adding an address at once both heard 201 and only one address was kept
    (the list was read, then written whole); twelve at once kept one. Adds are applied one after
    another; a removal whose list changed under it is refused (its index may name another address)."""
    admin = admin_of(drop)
    urls = [f"json://127.0.0.1:9/tab{n}" for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        added = list(pool.map(lambda url: admin.call("POST", "/api/notifications", json={"url": url}), urls))
    assert [r.status_code for r in added] == [201] * 8
    listed = admin.call("GET", "/api/notifications").json()["urls"]
    assert sorted(item["shown"] for item in listed) == sorted(urls)
    with ThreadPoolExecutor(4) as pool:
        removed = list(pool.map(lambda _: admin.call("DELETE", "/api/notifications/0"), range(4)))
    assert {r.status_code for r in removed} <= {200, 409}
    left = admin.call("GET", "/api/notifications").json()["urls"]
    assert len(left) == 8 - sum(r.status_code == 200 for r in removed)
    assert all(r.json()["code"] == "notification_list_changed" for r in removed if r.status_code == 409)


def test_a_tab_left_open_removes_the_address_it_shows_or_none(drop, admin_of):
    """Cold review: tab A lists [family, me]; tab B removes "family"; tab A, not reloaded, removes
    "family" at index 0, and "me" went instead. The console sends what it listed there."""
    admin = admin_of(drop)
    for url in ("json://127.0.0.1:9/family", "json://127.0.0.1:9/me"):
        assert admin.call("POST", "/api/notifications", json={"url": url}).status_code == 201
    [family, me] = admin.call("GET", "/api/notifications").json()["urls"]
    assert admin.call("DELETE", "/api/notifications/0", params={"shown": family["shown"]}).status_code == 200  # tab B
    stale = admin.call("DELETE", "/api/notifications/0", params={"shown": family["shown"]})  # tab A
    assert stale.status_code == 409 and stale.json()["code"] == "notification_list_changed"
    assert [u["shown"] for u in admin.call("GET", "/api/notifications").json()["urls"]] == [me["shown"]]


class Sink:
    """An address that takes connections and never answers, until `close()`."""

    def __init__(self):
        import socket
        import threading

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list = []
        self.closed = False
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.closed:
                    conn.close()
                    return
                self.held.append(conn)

    def close(self):
        import socket

        with self.lock:
            self.closed = True
            for conn in self.held:
                conn.close()
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way (close alone does not)
        self.listener.close()


def test_notification_tests_that_hang_leave_guests_their_threads(make_drop, admin_of, fake):
    """Attack run: sixteen tests to an address that never answers (`rto=90`) held the threads behind
    asyncio.to_thread, and a guest's page took 57 s. Apprise sends on threads of its own, and an
    owner's second test while the first is on its way is refused."""
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", MAX_CONCURRENT="1")  # 9 shared threads
    sink = Sink()
    owners = [admin_of(drop, f"owner{i}@example.org") for i in range(10)]
    token = invite_token(owners[0].invite())
    for owner in owners:
        url = f"json://127.0.0.1:{sink.port}/hook?rto=60&cto=5"
        assert owner.call("POST", "/api/notifications", json={"url": url}).status_code == 201
    pool = ThreadPoolExecutor(10)
    try:
        tests = [pool.submit(owner.call, "POST", "/api/notifications/test") for owner in owners]
        wait_until(lambda: len(sink.held) >= 4, what="Apprise's threads all waiting on the sink")
        again = owners[0].call("POST", "/api/notifications/test")
        assert again.status_code == 429 and again.json()["code"] == "notification_testing"
        guest = drop.guest()
        assert guest.http.get(f"/i/{token}", timeout=10).status_code == 200  # reads the store in a thread
        assert guest.create(100, invite=token).status_code == 201
    finally:
        sink.close()
    assert [t.result().status_code for t in tests] == [502] * 10
    pool.shutdown()


def test_an_address_cannot_hold_a_sender_for_as_long_as_it_asks(drop, admin_of):
    """Cold review: an address's own `rto=3600` held one of Apprise's four threads for an hour at each
    digest, and four such addresses kept every owner's notices waiting. A service gets 10 s to
    connect and 10 to answer, whatever its address says: the test message is refused, not waited on."""
    sink = Sink()
    try:
        admin = admin_of(drop)
        url = f"json://127.0.0.1:{sink.port}/hook?rto=3600&cto=3600"
        assert admin.call("POST", "/api/notifications", json={"url": url}).status_code == 201
        refused = admin.call("POST", "/api/notifications/test")  # the console's client waits 30 s at most
        assert refused.status_code == 502 and len(sink.held) == 1
    finally:
        sink.close()


def test_a_guests_name_reaches_an_html_service_as_text(drop, admin_of, receiver):
    """Attack run: a guest named `<a href="https://evil.example/login">Immich: sign in again</a>` became
    a working link in the owner's digest email. What a guest wrote is text to every service: Apprise
    escapes it for those that take HTML (here the receiver, told to take HTML as an email does)."""
    admin = admin_of(drop, "ada@example.org")
    added = admin.call("POST", "/api/notifications", json={"url": receiver.url + "&format=html"})
    assert added.status_code == 201, added.text
    invite = admin.invite(label="private", title="Wedding")
    guest = drop.guest()
    name = '<a href="https://evil.example/login">Sign in</a>'
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(invite), metadata={"guestName": name})
    assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    digest = receiver.next()
    assert "<a" not in digest["message"] and "evil.example" in digest["message"], digest
    assert digest["message"].startswith("&lt;a")
