"""The public page switch, the status channel's privacy, proxies, and health."""

import json

import httpx
import pytest
from websockets.exceptions import InvalidStatus, ConnectionClosed
from websockets.sync.client import connect as ws_connect

from conftest import MEDIA, _b64, invite_token, sha1_of


def test_public_page_off_by_default_really_off(make_drop, fake):
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="")  # unset: the default
    assert drop.settings.public_upload_page_enabled is False
    guest = drop.guest()
    page = guest.http.get("/")
    assert page.status_code == 404 and "does not take uploads" in page.text
    for path in ("/static/index.html", "/static/INDEX.HTML", "/static/admin/index.html", "/static/admin/../index.html"):
        assert guest.http.get(path).status_code == 404, path  # not the upload page by another name (attack run)
    assert guest.http.get("/static/app.js").status_code == 200  # what the pages load still loads
    assert guest.http.get("/api/config").json()["publicUploads"] is False
    # Whatever the request says, the tus endpoint takes nothing.
    for meta in ("", f",invite {_b64('guess')}", f",target {_b64('public')}"):
        response = guest.http.post("/api/uploads", headers=guest.tus_headers(**{
            "Upload-Length": "10", "Upload-Metadata": f"filename {_b64('a.jpg')},filetype {_b64('image/jpeg')}" + meta}))
        assert response.status_code in (403, 404), response.text
    assert drop.server.call(drop.services.storage.list_uids()) == []


def test_a_wrong_address_gets_a_page_in_the_readers_language(drop):
    """A mistyped link is read by a person: a page in their language, like a closed link's, with its
    text escaped; what scripts load (/static/) and the API keep their machine answers."""
    guest = drop.guest()
    page = guest.http.get("/no/such/page", headers={"Accept-Language": "fr-CH, de;q=0.5"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-language"] == "fr" and '<html lang="fr">' in page.text
    assert "Il n&#x27;y a rien à cette adresse." in page.text and "Not Found" not in page.text
    assert guest.http.get("/static/missing.js").headers["content-type"].startswith("text/plain")
    console = guest.http.get("/admin/invites", headers={"Accept-Language": "de"})  # an owner's typo
    assert console.status_code == 404 and "Die Konsole für den Besitzer der Links ist unter /admin." in console.text
    assert guest.http.get("/api/missing").json()["code"] == "no_such_address"


def test_public_page_on(drop):
    first = httpx.get(drop.url + "/")  # a browser's first visit: the page hands out the session cookie
    assert first.status_code == 200 and first.headers["set-cookie"].startswith("drop_session=")
    guest = drop.guest()
    config = guest.http.get("/api/config").json()
    extensions = config.pop("extensions")  # what Immich takes, so the page refuses a .txt before sending
    assert ".jpg" in extensions and ".mp4" in extensions and ".txt" not in extensions
    assert config == {"endpoint": "/api/uploads", "chunkSize": 8 * 1024 * 1024,
                      "maxUploadSize": drop.settings.max_upload_size, "publicUploads": True}
    assert "immich" not in json.dumps(config).lower()


def test_session_cookie_is_signed_and_httponly(drop):
    response = httpx.get(drop.url + "/")
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert "." in value  # id.signature
    forged = httpx.get(drop.url + "/", cookies={"drop_session": value.split(".")[0] + ".bad"})
    assert "set-cookie" in forged.headers  # a forged cookie is replaced, not trusted


def test_status_channel_shows_only_own_uploads(drop):
    alice, bob = drop.guest(), drop.guest()
    bob.watch()
    a = alice.upload(MEDIA / "exif_offset.jpg")
    alice.wait_for(a, "done")
    b = bob.upload(MEDIA / "no_date.jpg")
    bob.wait_for(b, "done")
    assert {e["id"] for e in bob.events if "id" in e} == {b}
    # On (re)connect the current state of this browser's uploads, and only those.
    alice_again = drop.guest(session=alice.session)
    alice_again.watch()
    assert [(e["id"], e["state"], e["filename"]) for e in alice_again.snapshot] == [(a, "done", "exif_offset.jpg")]
    assert set(alice_again.snapshot[0]) == {"type", "id", "filename", "size", "state", "message", "code", "sha1"}
    assert alice_again.snapshot[0]["sha1"] == sha1_of(MEDIA / "exif_offset.jpg")  # her own file's: she sent it


def test_a_pages_status_channel_lists_only_its_own_links_uploads(drop, admin_of):
    """A link's page listed the browser's files sent through other links as "sent earlier" (owner
    walk): `?invite=` gives that link's, `?public=1` the public page's; no question, all of them."""
    admin = admin_of(drop)
    tokens = [invite_token(admin.invite()) for _ in range(2)]
    guest = drop.guest()
    ids = {"public": guest.upload(MEDIA / "exif_offset.jpg")}
    for n, token in enumerate(tokens):
        ids[token] = guest.invite_upload(MEDIA / ("no_date.jpg", "exif_offset.heic")[n], token)
    for uid in ids.values():
        guest.wait_for(uid, ["done", "duplicate"])

    def snapshot(query):
        with ws_connect(drop.url.replace("http://", "ws://") + "/ws" + query,
                        additional_headers={"Cookie": guest.cookie}, open_timeout=10) as channel:
            events = []
            while (event := json.loads(channel.recv(timeout=10)))["type"] != "ready":
                events.append(event["id"])
            return events

    assert snapshot(f"?invite={tokens[0]}") == [ids[tokens[0]]]
    assert snapshot(f"?invite={tokens[1]}") == [ids[tokens[1]]]
    assert snapshot("?public=1") == [ids["public"]]
    assert sorted(snapshot("")) == sorted(ids.values())
    assert snapshot("?invite=not-a-link") == []


def test_status_over_http_shows_only_own_uploads(drop):
    """For a page whose WebSocket cannot get through: the same current state, over HTTP."""
    alice, bob = drop.guest(), drop.guest()
    a = alice.upload(MEDIA / "exif_offset.jpg")
    alice.wait_for(a, "done")
    b = bob.upload(MEDIA / "no_date.jpg")
    bob.wait_for(b, "done")
    answer = alice.http.get("/api/status")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert [(e["id"], e["state"], e["filename"]) for e in answer.json()["events"]] == [(a, "done", "exif_offset.jpg")]
    assert set(answer.json()["events"][0]) == {"type", "id", "filename", "size", "state", "message", "code", "sha1"}
    assert httpx.get(drop.url + "/api/status").json() == {"events": []}  # no session: nothing


def test_status_channel_needs_a_session(drop):
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        with ws_connect(drop.url.replace("http", "ws") + "/ws", open_timeout=5) as ws:
            ws.recv(timeout=5)


def test_status_channel_takes_small_messages_only(drop):
    """The page sends "ping" and nothing else: a larger message closes the socket (1009) before the
    server holds it (uvicorn took 16 MiB a message, from anyone with a session cookie)."""
    guest = drop.guest()
    url = drop.url.replace("http", "ws") + "/ws"
    with ws_connect(url, additional_headers={"Cookie": guest.cookie}, open_timeout=5, max_size=None) as ws:
        while json.loads(ws.recv(timeout=5))["type"] != "ready":
            pass
        ws.send("ping")
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
        ws.send(b"\x00binary")  # ignored, as other text is: it dropped the connection (attack run)
        ws.send("ping")
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
        ws.send("x" * 64 * 1024)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1009


def test_forwarded_headers_only_from_trusted_proxies(make_drop):
    spoofed = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    untrusted = make_drop()
    guest = untrusted.guest()
    location = guest.create(10, **spoofed).headers["Location"]
    assert location.startswith(untrusted.url + "/api/uploads/")

    trusted = make_drop(TRUSTED_PROXIES="127.0.0.1/32")
    cookie = httpx.get(trusted.url + "/", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
    assert cookie.startswith("__Host-drop_session=") and "Secure" in cookie and "Path=/;" in cookie
    guest = trusted.guest()
    location = guest.create(10, **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "photos.example.org",
                                   "Origin": "https://photos.example.org", "Cookie": cookie.split(";")[0]})
    assert location.headers["Location"].startswith("https://photos.example.org/api/uploads/")


def test_security_headers(drop):
    response = httpx.get(drop.url + "/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "access-control-allow-origin" not in response.headers


def test_health_and_readiness(drop):
    health = httpx.get(drop.url + "/healthz")  # answered ahead of Starlette's routing, same headers
    assert health.json() == {"status": "ok"} and health.headers["cache-control"] == "no-store"
    assert health.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in health.headers
    assert httpx.head(drop.url + "/healthz").status_code == 200
    ready = httpx.get(drop.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "staging": "ok", "immich": "ok"}
    drop.fake.fail_status = 503
    ready = httpx.get(drop.url + "/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["immich"].startswith("error")
    assert httpx.get(drop.url + "/healthz").status_code == 200


def test_metrics_are_off_by_default_and_protected(make_drop):
    assert httpx.get(make_drop().url + "/metrics").status_code == 404
    drop = make_drop(METRICS_TOKEN="scrape-me")
    guest = drop.guest()
    drop.fake.fail_status = 503
    waiting = guest.upload(MEDIA / "exif_offset.jpg")
    guest.wait_for(waiting, "retrying")
    drop.fake.fail_status = None
    guest.wait_for(waiting, "done")
    assert httpx.get(drop.url + "/metrics").status_code == 401
    assert httpx.get(drop.url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    text = httpx.get(drop.url + "/metrics", headers={"Authorization": "Bearer scrape-me"}).text
    size = (MEDIA / "exif_offset.jpg").stat().st_size
    assert f"immich_drop_received_bytes_total {float(size)}" in text
    assert "immich_drop_uploads_created_total 1.0" in text
    assert 'immich_drop_uploads{state="done"} 1.0' in text
    assert 'immich_drop_immich_errors_total{kind="unavailable"}' in text
    assert 'immich_drop_deliveries_total{outcome="done"} 1.0' in text
    assert "immich_drop_delivery_seconds_count 1.0" in text and "immich_drop_delivery_queue_length 0.0" in text


def test_a_flood_of_readiness_questions_asks_immich_one_at_a_time(drop):
    """300 parallel /readyz each asked Immich twice, on the connections deliveries use: a photo took
    25-45 s to reach Immich (attack run). Questions that come while a check runs share its answer."""
    from concurrent.futures import ThreadPoolExecutor

    before = drop.fake.pings
    with httpx.Client(base_url=drop.url, limits=httpx.Limits(max_connections=60)) as client, \
            ThreadPoolExecutor(60) as pool:
        answers = list(pool.map(lambda _: client.get("/readyz"), range(120)))
    assert all(a.status_code == 200 and a.json()["status"] == "ready" for a in answers)
    assert drop.fake.pings - before <= 60  # shared: at most one check per wave of questions (2 seen here)
    guest = drop.guest()
    assert guest.wait_for(guest.upload(MEDIA / "exif_offset.jpg"), ["done", "failed"])["state"] == "done"


def test_readiness_checks_the_configured_key(drop):
    drop.fake.revoke(drop.key)
    ready = httpx.get(drop.url + "/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["immich"] == "error: Invalid API key"
