"""The owner's side of invites over the API: refusals per field, editing every field, the title guests
see, limits never above the server's, refused uploads in the log, the printable QR card, archived
delivery, and the owner's live status channel. Real HTTP, real tus clients, the fake Immich."""

import base64
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import MEDIA, invite_token

MB = 1000 * 1000


@pytest.fixture
def drop(make_drop):
    return make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", MAX_UPLOAD_SIZE="60MB")


def test_every_bad_field_is_refused_at_once_with_its_reason_and_nothing_is_made(drop, admin_of, fake):
    admin = admin_of(drop)
    response = admin.call("POST", "/api/invites", json={
        "label": "Party", "expiresAt": "", "maxUses": "", "maxFileSize": 500 * MB, "album": {"name": "  "},
        "password": "123"})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {field: e["code"] for field, e in errors.items()} == {
        "expiresAt": "expiry_missing", "maxUses": "uses_number", "maxFileSize": "limit_above_server",
        "album": "album_name_missing", "password": "password_length"}
    assert errors["maxFileSize"]["params"] == {"max": 60 * MB}
    assert "60 MB" in errors["maxFileSize"]["message"]
    assert all("{" not in e["message"] and "null" not in e["message"] for e in errors.values())  # for people
    assert admin.call("GET", "/api/invites").json() == [] and fake.albums == {}  # nothing half-made
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    for body, field, code in [({"expiresAt": past}, "expiresAt", "expiry_past"), ({"maxUses": 0}, "maxUses", "uses_number"),
                              ({"maxFiles": 0}, "maxFiles", "count_number"),
                              ({"maxTotalBytes": 0}, "maxTotalBytes", "limit_number"), ({"archive": "yes"}, "archive", "boolean"),
                              ({"maxFileSize": "1,000"}, "maxFileSize", "limit_grouped"),
                              ({"maxFileSize": "1.000.000"}, "maxFileSize", "limit_grouped"),
                              ({"maxFileSize": "1,5"}, "maxFileSize", "limit_number"),
                              ({"maxTotalBytes": "1\u00a0000"}, "maxTotalBytes", "limit_grouped"),
                              ({"maxTotalBytes": "1,\u0660\u0660\u0660"}, "maxTotalBytes", "limit_number"),
                              ({"maxFiles": "1,000"}, "maxFiles", "count_number"),
                              ({"expiresInDays": 1e-300}, "expiresAt", "expiry_days"),
                              ({"expiresInDays": 0.5}, "expiresAt", "expiry_days"),
                              ({"expiresInDays": 3651}, "expiresAt", "expiry_days")]:
        refused = admin.call("POST", "/api/invites", json=body)
        assert refused.status_code == 400 and refused.json()["errors"][field]["code"] == code, body
    assert admin.invite(maxFileSize=60 * MB)["limits"]["maxFileSize"] == 60 * MB  # the server's own limit is fine
    assert admin.invite(expiresInDays=2.0)["state"] == "active"  # a whole number, written as a float


def test_every_field_can_be_edited(drop, admin_of, fake):
    admin = admin_of(drop)
    invite = admin.invite(label="Old", maxUses=1, expiresInDays=1, password="first one")
    url = f"/api/invites/{invite['id']}"
    moment = "2031-05-06T07:08:09+00:00"
    edited = admin.call("PATCH", url, json={
        "label": "New label", "title": "Welcome, guests", "album": {"name": "Fresh album"}, "maxUses": 3,
        "expiresAt": moment, "password": "second one", "maxFileSize": 5 * MB, "maxTotalBytes": 50 * MB,
        "maxFiles": 9, "mediaKind": "videos", "archive": True}).json()
    assert edited["label"] == "New label" and edited["title"] == "Welcome, guests"
    assert edited["albumName"] == "Fresh album" and fake.albums[edited["albumId"]].name == "Fresh album"
    assert edited["maxUses"] == 3 and edited["expiresAt"] == moment  # the seconds are kept
    assert edited["limits"] == {"maxFileSize": 5 * MB, "maxTotalBytes": 50 * MB, "maxFiles": 9, "mediaKind": "videos"}
    assert edited["archive"] is True and edited["hasPassword"] is True
    guest = drop.guest()
    token = invite_token(invite)
    guest.http.get(f"/i/{token}")
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "first one"}).status_code == 401
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "second one"}).status_code == 204
    cleared = admin.call("PATCH", url, json={"password": None, "album": None, "maxUses": None, "expiresAt": None,
                                             "maxFileSize": None, "maxTotalBytes": None, "maxFiles": None}).json()
    assert cleared["hasPassword"] is False and cleared["albumId"] is None and cleared["maxUses"] is None
    assert cleared["expiresAt"] is None and cleared["limits"]["maxFileSize"] is None
    assert drop.guest().http.get(f"/api/i/{token}").json()["needsPassword"] is False
    assert admin.call("PATCH", url, json={"maxUses": ""}).json()["errors"]["maxUses"]["code"] == "uses_number"


def test_an_edit_may_keep_the_expiry_of_an_expired_link(drop, admin_of):
    admin = admin_of(drop)
    invite = admin.invite()
    past = datetime.now(timezone.utc) - timedelta(days=1)
    drop.server.call(drop.services.store.update_invite(invite["id"], expires_at=past))
    kept = admin.call("PATCH", f"/api/invites/{invite['id']}", json={"label": "renamed", "expiresAt": past.isoformat()})
    assert kept.status_code == 200 and kept.json()["state"] == "expired" and kept.json()["label"] == "renamed"


def test_guests_are_never_promised_more_than_the_server_takes(drop, admin_of):
    admin = admin_of(drop)
    invite = admin.invite(title="Trip")
    drop.server.call(drop.services.store.update_invite(invite["id"], max_file_size=500 * MB))  # an older link
    info = drop.guest().http.get(f"/api/i/{invite_token(invite)}").json()
    assert info["limits"]["maxFileSize"] == 60 * MB
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["limits"]["maxFileSize"] == 60 * MB


def test_refused_uploads_are_in_the_owners_log_with_their_reason(drop, admin_of):
    admin = admin_of(drop)
    invite = admin.invite(mediaKind="photos", maxFileSize=1000, maxFiles=1)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    assert guest.create(100, "clip.mp4", invite=token, **_named("clip.mp4", token, "Anna")).status_code == 415
    assert guest.create(2000, "big.jpg", invite=token).status_code == 413
    assert guest.create(61 * MB, "huge.jpg", invite=token).status_code == 413  # above the server's own limit
    assert guest.create(500, "ok.jpg", invite=token).status_code == 201
    assert guest.create(500, "more.jpg", invite=token).status_code == 403
    log = admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()
    assert [(row["filename"], row["state"], row["code"]) for row in log] == [
        ("more.jpg", "refused", "limit_reached"), ("ok.jpg", "receiving", None), ("huge.jpg", "refused", "too_large"),
        ("big.jpg", "refused", "file_too_large"), ("clip.mp4", "refused", "photos_only")]
    assert log[-1]["guestName"] == "Anna" and log[-1]["message"] == "This link takes photos only."


def _named(filename: str, token: str, name: str) -> dict:
    """Upload-Metadata as the guest page sends it with the guest's name."""
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    return {"Upload-Metadata": f"filename {b64(filename)},filetype {b64('video/mp4')},invite {b64(token)},guestName {b64(name)}"}


def test_the_printable_qr_card_has_the_title_and_the_link_under_the_code(drop, admin_of):
    from PIL import Image

    admin = admin_of(drop)
    titled = admin.invite(label="private words", title="Anna & Tom's wedding")
    plain = admin.invite(label="private words")
    cards = {}
    for invite in (titled, plain):
        png = admin.call("GET", f"/api/invites/{invite['id']}/qr.png")
        assert png.headers["content-type"] == "image/png" and "attachment" in png.headers["content-disposition"]
        cards[invite["id"]] = Image.open(io.BytesIO(png.content)).convert("L")
    with_title, without = cards[titled["id"]], cards[plain["id"]]
    assert with_title.width == without.width and with_title.height > without.height > without.width  # text under it
    below = without.crop((0, without.width, without.width, without.height))
    assert below.getextrema()[0] < 100  # the link is written there, in dark ink


def test_titles_labels_and_album_names_are_one_line_of_text(drop, admin_of, fake):
    """Attack run: a title with a line break made the QR card a 500; a NUL in an album name made Immich
    refuse it, told as "Immich cannot be reached"; 0, false or [] as a title were saved as "" without a
    word. Control and format characters are stored as spaces (the joiners kept); a non-text is refused."""
    admin = admin_of(drop)
    invite = admin.invite(label="a\x00b", title="Fête\r\nde\u2029Noël\u202e \U0001F469\u200d\U0001F9B0\x1c",
                          album={"name": "\x07Trip\x00 2026\n"})
    assert (invite["label"], invite["title"]) == ("a b", "Fête  de Noël  \U0001F469\u200d\U0001F9B0")
    assert invite["albumName"] == "Trip  2026" and [a.name for a in fake.albums.values()] == ["Trip  2026"]
    png = admin.call("GET", f"/api/invites/{invite['id']}/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    made = admin.call("POST", "/api/albums", json={"name": "Party\x00\n"})
    assert made.status_code == 201 and made.json()["albumName"] == "Party"
    for value in (0, False, [], {}, 12):
        refused = admin.call("POST", "/api/invites", json={"title": value})
        assert refused.status_code == 400 and refused.json()["errors"]["title"]["code"] == "text_invalid", value
    assert admin.call("POST", "/api/invites", json={"album": {"name": "\x00\n "}}).json()["errors"]["album"]["code"] \
        == "album_name_missing"
    assert len(admin.call("GET", "/api/invites").json()) == 1


def test_links_for_review_arrive_archived(drop, admin_of, fake):
    admin = admin_of(drop)
    guest = drop.guest()
    review = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(admin.invite(archive=True, album={"name": "R"})))
    straight = guest.invite_upload(MEDIA / "no_date.jpg", invite_token(admin.invite()))
    for uid in (review, straight):
        assert guest.wait_for(uid, ["done", "failed"])["state"] == "done"
    visibility = {r.filename: r.visibility for r in fake.uploads}
    assert visibility == {"exif_offset.jpg": "archive", "no_date.jpg": "timeline"}
    [album] = [a for a in fake.albums.values() if a.name == "R"]
    assert len(album.assets) == 1  # still in its album


def owner_socket(drop, admin):
    url = drop.url.replace("http://", "ws://") + "/ws"
    cookie = "; ".join(f"{k}={v}" for k, v in admin.http.cookies.items())
    ws = ws_connect(url, additional_headers={"Cookie": cookie, "Origin": drop.url}, open_timeout=10).__enter__()
    assert json.loads(ws.recv(timeout=10)) == {"type": "ready"}
    return ws


def test_an_owners_console_hears_its_own_links_and_nobody_elses(drop, admin_of):
    ada, bob = admin_of(drop, "ada@example.org"), admin_of(drop, "bob@example.org")
    mine, theirs = ada.invite(), bob.invite()
    ada_ws, bob_ws = owner_socket(drop, ada), owner_socket(drop, bob)
    guest = drop.guest()
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", invite_token(mine))
    guest.wait_for(uid, "done")
    seen = []
    while not (seen and seen[-1]["files"] == 1 and seen[-1]["lastUploadAt"]):
        seen.append(json.loads(ada_ws.recv(timeout=10)))
    assert {e["id"] for e in seen} == {mine["id"]} and seen[-1]["type"] == "invite" and seen[-1]["state"] == "active"
    assert seen[-1]["bytes"] == (MEDIA / "exif_offset.jpg").stat().st_size
    other = guest.invite_upload(MEDIA / "no_date.jpg", invite_token(theirs))
    guest.wait_for(other, "done")
    first_of_bob = json.loads(bob_ws.recv(timeout=10))
    assert first_of_bob["id"] == theirs["id"]  # bob heard only his own link, never ada's before it
    ada_ws.close()
    bob_ws.close()
    evil = drop.url.replace("http://", "ws://") + "/ws"
    cookie = "; ".join(f"{k}={v}" for k, v in ada.http.cookies.items())
    with pytest.raises(InvalidStatus):  # a foreign page gets no owner channel (and has no guest session)
        ws_connect(evil, additional_headers={"Cookie": cookie, "Origin": "https://evil.example"}, open_timeout=10)


def link_page_socket(drop, token: str):
    """A guest page's status channel on the link `token` names (a fresh browser session)."""
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    url = drop.url.replace("http://", "ws://") + "/ws?invite=" + token
    ws = ws_connect(url, additional_headers={"Cookie": guest.cookie, "Origin": drop.url}, open_timeout=10).__enter__()
    assert json.loads(ws.recv(timeout=10)) == {"type": "ready"}
    return guest, ws


def test_a_links_open_pages_hear_when_its_owner_changes_it_and_no_other_link_does(drop, admin_of):
    """A disabled link changed an open guest page only at its next upload (owner walk): its pages
    are told at once, with nothing of the change itself, and only that link's pages."""
    ada = admin_of(drop)
    first, second = ada.invite(), ada.invite()
    _, on_first = link_page_socket(drop, invite_token(first))
    _, on_second = link_page_socket(drop, invite_token(second))
    stranger, on_nothing = link_page_socket(drop, "no-such-token")
    assert ada.call("PATCH", f"/api/invites/{first['id']}", json={"disabled": True}).status_code == 200
    assert json.loads(on_first.recv(timeout=10)) == {"type": "link"}
    assert ada.call("PATCH", f"/api/invites/{second['id']}", json={"maxFiles": 5}).status_code == 200
    assert json.loads(on_second.recv(timeout=10)) == {"type": "link"}  # its first event: never the first link's
    assert ada.call("DELETE", f"/api/invites/{first['id']}").status_code == 204
    assert json.loads(on_first.recv(timeout=10)) == {"type": "link"}
    stranger.invite_upload(MEDIA / "no_date.jpg", invite_token(second))
    assert json.loads(on_nothing.recv(timeout=10))["type"] == "upload"  # its own upload first: no link's news
    for ws in (on_first, on_second, on_nothing):
        ws.close()
