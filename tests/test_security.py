"""Smaller promises an attack run checked: the status channel's Origin, the Host name, no-store on link
tokens, /metrics only with a bearer token, guest cookies that expire on the server, private files,
and no link token in any log line the server writes by default."""

import base64
import hashlib
import json
import socket
import stat
import time
from pathlib import Path

import httpx
import pytest
from itsdangerous import TimestampSigner
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import MEDIA, Admin, Guest, Process, free_port, invite_token, wait_until


def ws(drop, cookie, **headers):
    return ws_connect(drop.url.replace("http://", "ws://") + "/ws", additional_headers={"Cookie": cookie, **headers},
                      open_timeout=10)


def test_status_channel_checks_origin(drop):
    guest = drop.guest()
    with pytest.raises(InvalidStatus) as refused:
        ws(drop, guest.cookie, Origin="https://evil.example")
    assert refused.value.response.status_code == 403
    with ws(drop, guest.cookie, Origin=drop.url) as channel:
        assert json.loads(channel.recv(timeout=10)) == {"type": "ready"}


def test_status_channels_are_capped_per_browser_and_per_address(drop):
    """3000 sockets from one address grew the server by 110 MB, and 1000 took every file descriptor
    (attack run). A refused channel costs nothing: the page asks over HTTP instead."""
    def channel(cookie):
        opened = ws(drop, cookie, Origin=drop.url).__enter__()
        assert json.loads(opened.recv(timeout=10)) == {"type": "ready"}
        return opened

    def open_here() -> int:
        return sum(n for (kind, _), n in drop.services.channels._open.items() if kind == "address")

    assert (drop.services.channels.per_session, drop.services.channels.per_address) == (4, 256)
    drop.services.channels.per_address = 64  # the same rule with fewer sockets to open here
    guest = drop.guest()
    held = [channel(guest.cookie) for _ in range(4)]
    with pytest.raises(InvalidStatus):
        ws(drop, guest.cookie, Origin=drop.url)
    held.pop().close()
    wait_until(lambda: open_here() == 3, what="the closed channel counted out")
    held.append(channel(guest.cookie))
    for other in [drop.guest() for _ in range(30)]:  # 4 + 2 x 30 = 64 from this address
        held += [channel(other.cookie) for _ in range(2)]
    with pytest.raises(InvalidStatus):
        ws(drop, drop.guest().cookie, Origin=drop.url)
    for opened in held:
        opened.close()


def test_status_channels_count_an_ipv6_address_by_its_64(make_drop):
    """Behind a proxy, channels from made-up addresses of one /64 count as one address (probe)."""
    drop = make_drop(TRUSTED_PROXIES="127.0.0.1/32")
    drop.services.channels.per_address = 2
    held = []
    for n in range(2):
        held.append(ws(drop, drop.guest().cookie, Origin=drop.url, **{"X-Forwarded-For": f"2001:db8:0:5::{n}"}).__enter__())
        assert json.loads(held[-1].recv(timeout=10)) == {"type": "ready"}
    with pytest.raises(InvalidStatus):
        ws(drop, drop.guest().cookie, Origin=drop.url, **{"X-Forwarded-For": "2001:db8:0:5::99"})
    with ws(drop, drop.guest().cookie, Origin=drop.url, **{"X-Forwarded-For": "2001:db8:0:6::1"}) as other:
        assert json.loads(other.recv(timeout=10)) == {"type": "ready"}  # another /64
    for opened in held:
        opened.close()


def test_status_channels_leave_half_the_connections_to_requests(make_drop):
    """Attack run: 64 sessions from each of 8 addresses held 4 channels each, all 2,048 connections
    MAX_CONNECTIONS allows, and every request got 503, /healthz and uploads included, for as long as
    the sockets stayed open. Channels get half; the other half is for requests."""
    drop = make_drop(MAX_CONNECTIONS="16", MAX_CONNECTIONS_PER_ADDRESS="16")  # (all from 127.0.0.1 here)
    held = []
    guests = [drop.guest() for _ in range(3)]
    for guest in guests:
        for _ in range(4):
            try:
                opened = ws(drop, guest.cookie, Origin=drop.url).__enter__()
            except InvalidStatus:
                continue
            assert json.loads(opened.recv(timeout=10)) == {"type": "ready"}
            held.append(opened)
    assert len(held) == 8
    assert httpx.get(drop.url + "/healthz").status_code == 200
    assert guests[0].create(100).status_code == 201  # a guest's upload still begins
    for opened in held:
        opened.close()


def test_only_the_public_host_is_served_when_it_is_set(make_drop):
    drop = make_drop(PUBLIC_BASE_URL="https://drop.example.org")
    rebound = httpx.get(drop.url + "/api/config", headers={"Host": "attacker.example"})
    assert rebound.status_code == 421
    assert httpx.get(drop.url + "/api/config").status_code == 421  # 127.0.0.1 is another name too
    # the person who opened it by another name (trying it on localhost) reads where to go, and why
    assert rebound.text == "This server answers only at https://drop.example.org (PUBLIC_BASE_URL). Open it there."
    german = httpx.get(drop.url + "/admin", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert german.status_code == 421 and german.text.startswith("Dieser Server antwortet nur unter https://drop.")
    assert httpx.get(drop.url + "/api/config", headers={"Host": "drop.example.org"}).status_code == 200
    assert httpx.get(drop.url + "/api/config", headers={"Host": "DROP.example.org:443"}).status_code == 200
    assert httpx.get(drop.url + "/healthz", headers={"Host": "10.0.0.5:8080"}).status_code == 200  # health checks
    with pytest.raises(InvalidStatus):
        ws(drop, "", Host="attacker.example")
    # Without PUBLIC_BASE_URL any name is served (README: put the server behind a proxy that checks it).
    assert httpx.get(make_drop().url + "/api/config", headers={"Host": "attacker.example"}).status_code == 200


def test_answers_carrying_a_link_token_are_not_stored(drop, admin_of):
    admin = admin_of(drop)
    invite = admin.invite(label="x")
    answers = [admin.call("POST", "/api/invites", json={"label": "y"}),
               admin.call("GET", "/api/invites"), admin.call("GET", f"/api/invites/{invite['id']}"),
               admin.call("PATCH", f"/api/invites/{invite['id']}", json={"label": "z"}),
               admin.call("GET", f"/api/invites/{invite['id']}/qr.svg"),
               admin.call("GET", f"/api/invites/{invite['id']}/qr.png"),
               drop.guest().http.get(f"/i/{invite_token(invite)}"),
               drop.guest().http.get(f"/api/i/{invite_token(invite)}")]
    for answer in answers:
        assert answer.status_code in (200, 201) and answer.headers["cache-control"] == "no-store", answer.url


def test_refusals_are_not_stored_either(drop, admin_of):
    """A browser kept the 410 of a link turned off, and showed it again after its owner turned the link
    back on. An answer is the state of a moment: only static files may be kept."""
    admin = admin_of(drop)
    invite = admin.invite(label="x")
    token = invite_token(invite)
    admin.call("PATCH", f"/api/invites/{invite['id']}", json={"disabled": True})
    guest = drop.guest()
    answers = [guest.http.get(f"/i/{token}"), guest.http.get(f"/api/i/{token}"), guest.http.get("/api/i/nothing"),
               guest.http.get("/i/nothing"), guest.http.get("/api/session"),
               guest.http.post(f"/api/i/{token}/unlock", json={"password": "x"}),
               guest.http.head("/api/uploads/" + "0" * 32, headers={"Tus-Resumable": "1.0.0"})]
    assert sorted(a.status_code for a in answers) == [401, 404, 404, 404, 410, 410, 410]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.url
    script = guest.http.get("/static/app.js")
    assert script.status_code == 200 and "cache-control" not in script.headers  # static files stay cacheable


def test_metrics_need_the_bearer_scheme(make_drop):
    drop = make_drop(METRICS_TOKEN="scrape-me")
    for header in ("scrape-me", "Basic scrape-me", "Token scrape-me", "Bearerscrape-me", "Bearer  wrong"):
        assert httpx.get(drop.url + "/metrics", headers={"Authorization": header}).status_code == 401, header
    assert httpx.get(drop.url + "/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200


def signed_days_ago(days: float, session: str) -> str:
    class Then(TimestampSigner):
        def get_timestamp(self):
            return int(time.time() - days * 24 * 3600)

    return Then("test-secret", salt="immich-drop.session").sign(session).decode()


def test_guest_cookies_expire_on_the_server(drop):
    old = signed_days_ago(31, "a-month-old-session")
    guest = Guest(drop.url, session=old)
    assert guest.create(10).status_code == 403  # no session: the cookie is too old, whatever the browser kept
    page = guest.http.get("/")
    assert "drop_session=" in page.headers["set-cookie"] and old not in page.headers["set-cookie"]
    fresh = drop.guest()
    assert fresh.create(10).status_code == 201
    guest.close()


@pytest.mark.parametrize("others", ['consent={"ads":false}', "theme=dark mode", "flag", "a?=b", 'q="x'])
def test_other_cookies_on_the_host_do_not_hide_the_guests_session(drop, others):
    """Attack run: one cookie Python's SimpleCookie could not parse (another app on the same host
    name, or a parent domain's) made every guest's session unreadable: 403 on every upload, and a new
    session on every page load. A drop_session set by someone else beside the real one hides nothing."""
    guest = drop.guest()
    session = guest.session
    guest.http.cookies.clear()  # only the headers below
    made = []
    for header in (f"{others}; drop_session={session}", f"drop_session={session}; {others}",
                   f"{others}; drop_session=forged.by-a-sibling; drop_session={session}",
                   # a sibling's validly signed one, sent first (a longer Path): the guest's, last, counts
                   f"drop_session={drop.guest().session}; {others}; drop_session={session}"):
        created = guest.create(10, Cookie=header)
        assert created.status_code == 201, (header, created.text)
        made.append(created.headers["Location"].rsplit("/", 1)[-1])
        page = guest.http.get("/", headers={"Cookie": header})
        assert "set-cookie" not in page.headers, header  # the same session, not a new one
        with ws_connect(drop.url.replace("http://", "ws://") + "/ws", additional_headers={"Cookie": header},
                        open_timeout=10) as channel:  # the channel sends this session's uploads, then "ready"
            seen = []
            while (event := json.loads(channel.recv(timeout=10)))["type"] != "ready":
                seen.append(event["id"])
            assert sorted(seen) == sorted(made), header


def test_over_https_only_this_hosts_own_session_cookie_counts(make_drop):
    """Cold review: a sibling site under the same parent domain can set a validly signed drop_session
    (its own visit's) with Domain= and Path=/api/; sent first, it was taken for the guest's, so the
    guest's password unlock went to the sibling's session. Over HTTPS the session cookie is
    __Host- prefixed, which only this host can set, and a plain one is not read."""
    drop = make_drop(TRUSTED_PROXIES="127.0.0.1/32")
    https = {"X-Forwarded-Proto": "https", "Origin": "https://127.0.0.1:%d" % drop.server.port}
    page = httpx.get(drop.url + "/", headers=https)
    mine = page.headers["set-cookie"].split(";")[0]
    assert mine.startswith("__Host-drop_session=")
    sibling = drop.guest().session  # validly signed, as any visitor's
    guest = drop.guest()
    for cookie, status in [(f"drop_session={sibling}; {mine}", 201), (f"{mine}; drop_session={sibling}", 201),
                           (f"drop_session={sibling}", 403)]:
        made = guest.create(10, Cookie=cookie, **https)
        assert made.status_code == status, (cookie, made.text)
    for proto in ("https", "wss"):  # Traefik says "wss" for a WebSocket (review): the same session
        with ws_connect(drop.url.replace("http://", "ws://") + "/ws", open_timeout=10, additional_headers={
                "Cookie": mine, "X-Forwarded-Proto": proto, "Origin": https["Origin"]}) as channel:
            while json.loads(channel.recv(timeout=10))["type"] != "ready":
                pass
    uid = guest.create(10, Cookie=mine, **https).headers["Location"].rsplit("/", 1)[-1]
    assert drop.upload_row(uid).session_id == TimestampSigner("test-secret", salt="immich-drop.session").unsign(
        mine.split("=", 1)[1]).decode()


def test_a_returning_guest_keeps_their_session(drop):
    guest = Guest(drop.url, session=signed_days_ago(2, "two-days-old"))
    renewed = guest.http.get("/api/config").headers["set-cookie"]
    value = renewed.split(";")[0].removeprefix("drop_session=")
    assert TimestampSigner("test-secret", salt="immich-drop.session").unsign(value, max_age=60).decode() == "two-days-old"
    assert "set-cookie" not in guest.http.get("/api/config").headers  # fresh now: nothing to renew
    guest.close()


def test_files_are_private(drop):
    guest = drop.guest()
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(uid, ["done", "failed"])
    pending = guest.create(10)  # still staged, with its sidecar
    staged = pending.headers["Location"].rsplit("/", 1)[-1]
    data, staging = drop.settings.data_dir, drop.settings.staging_dir
    for folder in (data, staging, staging / ".locks"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = [staging / staged, staging / f"{staged}.info"]
    if drop.settings.db_url.startswith("sqlite"):
        database = Path(drop.settings.db_url.split("///", 1)[1])
        assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
        files += [database, *database.parent.glob(database.name + "-*")]  # with its -wal and -shm
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_link_token_in_the_log(tmp_path, fake, log_format):
    env = {"DATA_DIR": str(tmp_path / "data"), "IMMICH_BASE_URL": fake.url, "SESSION_SECRET": "s",
           "LOG_FORMAT": log_format, "HOST": "127.0.0.1"}  # LOG_LEVEL left at its default
    server = Process(env, free_port(), keep_log=True)
    try:
        fake.add_account("ada@example.org", "correct horse")
        with Admin(server.url) as admin:
            assert admin.login(email="ada@example.org", password="correct horse").status_code == 200
            token = invite_token(admin.invite(password="open sesame"))
        guest = Guest(server.url)
        guest.http.get(f"/i/{token}")
        guest.http.get(f"/api/i/{token}")
        guest.http.post(f"/api/i/{token}/unlock", json={"password": "wrong"})
        guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"})
        uploader = guest.uploader(MEDIA / "exif_offset.jpg", chunk_size=4096, metadata={"invite": token})
        uploader.upload_chunk()
        assert guest.http.head(uploader.url, headers=guest.tus_headers()).status_code == 200
        uploader.upload()
        # the page's status channel names its link (attack run: uvicorn logged the token in full)
        # ...and as a client may write it, percent-encoded or after a ";" (attack run: both were logged)
        for query in (f"invite={token}", f"%69nvite={token}", f"x=1;invite={token}"):
            ws_url = server.url.replace("http://", "ws://") + f"/ws?{query}"
            with ws_connect(ws_url, additional_headers={"Cookie": guest.cookie}, open_timeout=10) as ws:
                ws.recv(timeout=10)
        guest.close()
        # ...and written raw: behind a quote in the query, or after a "/../" (cold review)
        host, port = server.url.removeprefix("http://").split(":")
        for target in (f'/api/config?x="&invite={token}', f"/api/i/a/../{token}"):
            with socket.create_connection((host, int(port))) as raw:
                raw.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                assert raw.recv(100).startswith(b"HTTP/1.1 ")
    finally:
        server.stop()
    log = "".join(server.log)
    assert "HEAD" in log and "/i/" in log and log.count("/ws?…") == 3  # the requests were logged...
    forms = [token, base64.b64encode(token.encode()).decode(), hashlib.sha256(token.encode()).hexdigest()]
    assert not [f for f in forms if f in log]  # ...without the token, in any form
    staging = tmp_path / "data" / "uploads"
    assert not [p for p in staging.glob("*.info") if token in p.read_text()]
