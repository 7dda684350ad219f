"""The admin console in a real browser (Debian's Chromium under Playwright), on a desktop and at 320 px:
refusals next to their fields, hidden fields that never block, editing every field, the live card,
sharing, the upload log, notification addresses, and the console's text in the catalogs."""

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from browser_kit import ANSWERS_READ, browser, needs_chromium, playwright, snap  # noqa: F401 - fixtures

from conftest import MEDIA, SIGNATURES, Guest, invite_token

pytestmark = needs_chromium
expect = playwright.expect
LIMIT_NUMBER = "A number above 0, or empty for no limit."
COUNT_NUMBER = "A whole number from 1 to 1,000,000, or empty for no limit."
SIZES = {"desktop": {"width": 1100, "height": 900}, "narrow": {"width": 320, "height": 700}}
WEB = Path(__file__).resolve().parents[1] / "web"


@pytest.fixture
def drop(make_drop):
    return make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false", MAX_UPLOAD_SIZE="60MB")


def console(browser, drop, fake, size="desktop", init_script=None):
    """A signed-in console page for ada@example.org; collects script errors in `page.problems`."""
    fake.add_account("ada@example.org", "correct horse")
    context = browser.new_context(viewport=SIZES[size], locale="en-US")
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda err: page.problems.append(str(err)))
    page.goto(drop.url + "/admin")
    page.fill("#email", "ada@example.org")
    page.fill("#pass", "correct horse")
    page.click("#login button[type=submit]")
    expect(page.locator("#who")).to_have_text("ada@example.org")
    return page


# The first notification address a test process checks loads Apprise: half a second on an idle
# machine, several seconds beside another test worker. Expectations that may wait for it wait longer.
APPRISE_MS = 20000


def no_sideways_scroll(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def error_of(form, field):
    return form.locator(f'.field-error[data-for="{field}"]')


@pytest.mark.parametrize("size", ["desktop", "narrow"])
def test_refusals_stand_next_to_their_fields_and_hidden_fields_never_block(drop, browser, fake, size):
    page = console(browser, drop, fake, size)
    form = page.locator("#create")
    form.locator(".f-album").select_option("__new")
    form.locator(".f-uses").select_option("n")
    form.locator(".f-uses-n").fill("")
    form.locator(".f-expiry").select_option("custom")
    form.locator(".f-max-file").fill("1000000000000")  # a size past what a number holds exactly: "reload the page" before
    form.locator(".f-max-files").fill("2.5")  # was saved as 3 files without a word
    form.locator("button[type=submit]").click()
    expect(error_of(form, "album")).to_have_text("Give the new album a name.")
    expect(error_of(form, "maxUses")).to_have_text(
        "Give how many browsers may use the link: a whole number from 1 to 1,000,000.")
    expect(error_of(form, "expiresAt")).to_have_text("Pick the date and time the link expires.")
    expect(error_of(form, "maxFileSize")).to_have_text("This server takes files up to 60 MB: give at most that.")
    expect(error_of(form, "maxFiles")).to_have_text(COUNT_NUMBER)
    expect(form.locator(".form-error")).to_have_text("Some fields need a change; see the notes next to them.")
    assert "{" not in form.inner_text() and "null" not in form.inner_text()  # words for people, not JSON
    assert page.locator(".invite").count() == 0 and fake.albums == {}  # nothing was made
    # each note stands in the column of the input it is about, just below it (spanning the row, a
    # "Largest file" note stood under the field that began the row: "Expires")
    for field, input_class in (("album", "f-new-album"), ("maxUses", "f-uses-n"), ("expiresAt", "f-expiry-date"),
                               ("maxFileSize", "f-max-file")):
        note, field_box = error_of(form, field).bounding_box(), form.locator("." + input_class).bounding_box()
        assert abs(note["x"] - field_box["x"]) < 2 and 0 <= note["y"] - (field_box["y"] + field_box["height"]) < 12, field
        expect(form.locator("." + input_class)).to_have_attribute("aria-invalid", "true")
    no_sideways_scroll(page)
    snap(page, f"admin-refusals-{size}.png")

    past = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    form.locator(".f-expiry-date").fill(past)
    form.locator("button[type=submit]").click()
    expect(error_of(form, "expiresAt")).to_have_text(
        "This date is in the past: pick a later one. (To stop a link now, use its Disable button.)")  # (owner walk)

    # Fields that are hidden now hold bad values, and still the link is made as shown.
    form.locator(".f-uses-n").fill("0")
    form.locator(".f-uses").select_option("")
    form.locator(".f-expiry").select_option("7")
    form.locator(".f-album").select_option("")
    form.locator(".f-max-file").fill("")
    form.locator(".f-max-files").fill("")
    form.locator("button[type=submit]").click()
    expect(page.locator(".invite")).to_have_count(1)
    expect(form.locator(".field-error:visible")).to_have_count(0)
    [made] = drop.server.call(drop.services.store.invites_of(
        [u for u, user in fake.users.items() if user["email"] == "ada@example.org"][0]))
    assert made.max_uses is None and made.expires_at is not None and made.album_id is None
    assert page.problems == []


@pytest.mark.parametrize("size", ["desktop", "narrow"])
def test_edit_every_field_keeps_the_seconds_and_cards_list_limits(drop, admin_of, browser, fake, size):
    page = console(browser, drop, fake, size)
    admin = admin_of(drop)  # the same account, over the API
    moment = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0, second=37)
    invite = admin.invite(label="Grandma Rose (one-time)", maxUses=1, expiresAt=moment.isoformat(), password="first one",
                          maxFileSize=5_000_000, maxFiles=9, mediaKind="photos")
    page.reload()
    card = page.locator(".invite").first
    expect(card.locator(".limits")).to_have_text("Limits: up to 5 MB a file · 9 files · Photos only")
    card.locator(".edit").click()
    edit = card.locator(".edit-box")
    expect(edit.locator(".f-label")).to_have_value("Grandma Rose (one-time)")
    field, remove = edit.locator(".f-password").bounding_box(), edit.locator(".f-password-remove").bounding_box()
    assert abs(remove["x"] - field["x"]) < 2 and remove["y"] > field["y"]  # under its field, not a Uses option
    assert edit.locator(".f-expiry-date").input_value().endswith(":37")  # seconds shown, so kept
    no_sideways_scroll(page)
    date_box = edit.locator(".f-expiry-date").bounding_box()
    next_label = edit.locator(".l-password").bounding_box()
    assert date_box["y"] + date_box["height"] <= next_label["y"] or date_box["x"] + date_box["width"] <= next_label["x"]
    edit.locator(".f-title").fill("Anna & Tom's wedding")
    edit.locator(".f-album").select_option("__new")
    edit.locator(".f-new-album").fill("Wedding")
    edit.locator(".f-uses").select_option("n")
    edit.locator(".f-uses-n").fill("3")
    edit.locator(".f-password").fill("second one")
    edit.locator(".f-password-show").click()
    assert edit.locator(".f-password").get_attribute("type") == "text"
    edit.locator(".f-max-total").fill("0.05")
    edit.locator(".f-kind").select_option("all")
    edit.locator(".f-archive").check()
    edit.locator("button[type=submit]").click()
    said = page.locator(".invite .card-note")  # on the card, where the owner is (owner walk)
    expect(said).to_have_text("Changes saved.")
    expect(said).to_be_in_viewport()
    page.select_option("#lang", "de")  # said again in the language chosen, then gone (owner walk)
    expect(said).to_have_text("Änderungen gespeichert.")
    expect(said).to_be_hidden(timeout=15000)
    page.select_option("#lang", "en")
    saved = admin.call("GET", f"/api/invites/{invite['id']}").json()
    assert saved["expiresAt"] == moment.isoformat()  # the untouched expiry keeps its seconds
    assert saved["title"] == "Anna & Tom's wedding" and saved["albumName"] == "Wedding" and saved["maxUses"] == 3
    assert saved["archive"] and saved["limits"] == {"maxFileSize": 5_000_000, "maxTotalBytes": 50_000_000,
                                                     "maxFiles": 9, "mediaKind": "all"}
    guest = drop.guest()
    token = invite_token(invite)
    guest.http.get(f"/i/{token}")
    assert guest.http.post(f"/api/i/{token}/unlock", json={"password": "second one"}).status_code == 204
    card = page.locator(".invite").first
    expect(card.locator(".guest-title")).to_have_text("Guests see: Anna & Tom's wedding")
    card.locator(".edit").click()
    card.locator(".edit-box .f-password-remove").check()
    card.locator(".edit-box button[type=submit]").click()
    expect(page.locator(".invite .facts").first).not_to_contain_text("password")  # redrawn after the save
    # what guests are asked shows on the card when it is not the default (owner walk)
    assert admin.call("PATCH", f"/api/invites/{invite['id']}", json={"guestFields": "required"}).status_code == 200
    page.reload()
    expect(page.locator(".invite .facts").first).to_contain_text("name required")
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["hasPassword"] is False
    assert page.problems == []


@pytest.mark.parametrize("size", ["desktop", "narrow"])
def test_the_card_updates_live_and_the_log_tells_who_sent_what_and_why_not(drop, admin_of, browser, fake, size):
    page = console(browser, drop, fake, size)
    admin = admin_of(drop)
    invite = admin.invite(label="Party", mediaKind="photos")
    page.reload()
    card = page.locator(".invite").first
    expect(card.locator(".facts")).to_contain_text("0 uses · 0 files")
    card.locator(".log").click()
    expect(card.locator(".log-box tbody")).to_have_text("Nothing uploaded yet.")
    guest = drop.guest()
    token = invite_token(invite)
    uid = guest.invite_upload(MEDIA / "exif_offset.jpg", token,
                              metadata={"guestName": "Rose", "guestMessage": "<b>Lovely</b> day!"})
    guest.wait_for(uid, "done")
    assert guest.create(100, "clip.mp4", invite=token).status_code == 415
    expect(card.locator(".facts")).to_contain_text("1 use · 1 file, ")  # no reload: over /ws
    expect(card.locator(".log-box tbody tr")).to_have_count(2)
    rows = card.locator(".log-box tbody tr")
    expect(rows.nth(0)).to_contain_text("refused: not a photo (this link takes photos only)")
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("—")  # a guest who gave no name (a blank cell read as missing)
    expect(rows.nth(1)).to_contain_text("delivered")
    # who sent it, and what they wrote under the name, as text
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("Rose<b>Lovely</b> day!")
    expect(rows.nth(1).locator(".guest-message")).to_have_text("<b>Lovely</b> day!")
    for cell in (4, 3):  # "delivered" and the time, each on one line ("delivere/d", a time four lines high)
        # found and measured in one step from the table: a late live event re-renders the rows, and a
        # cell found first and measured after (two steps) could be one taken out meanwhile (0 lines, CI)
        lines = card.locator(".log-box tbody").evaluate(
            "(tbody, cell) => { const r = document.createRange(); r.selectNodeContents(tbody.rows[1].cells[cell]);"
            " return r.getClientRects().length; }", cell)
        assert lines == 1, (cell, lines)
    no_sideways_scroll(page)
    snap(page, f"admin-console-{size}.png")
    assert page.problems == []


def test_the_log_says_how_far_a_file_on_its_way_is_and_when_it_stopped(drop, admin_of, browser, fake):
    """Owner walk: a video whose link expired at 22% while its guest had gone read "arriving" for good
    (still "receiving" five minutes later). The log says how far it came, and "stopped" once its link
    is closed or no byte came for ten minutes."""
    import os

    page = console(browser, drop, fake)
    admin = admin_of(drop)
    invite = admin.invite(label="Party")
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    created = guest.create(1000, "clip.jpg", invite=token)
    sent = guest.http.patch(created.headers["Location"], content=SIGNATURES[".jpg"] + b"x" * 216,
                            headers=guest.tus_headers(**{"Upload-Offset": "0",
                                                         "Content-Type": "application/offset+octet-stream"}))
    assert sent.status_code == 204
    uid = created.headers["Location"].rsplit("/", 1)[-1]
    [row] = admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()
    assert (row["state"], row["received"], row["stopped"]) == ("receiving", 220, False)
    # its "ready" re-reads an open log: only after it does a refreshed log prove the log's own timer.
    # Heard from the channel's start: it came in the same turn as the channel itself (a loaded CI
    # run), before a wait on the channel could begin, and the wait then waited for good
    ready = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: '"ready"' in str(frame) and ready.append(1)))
    with page.expect_websocket() as channel:
        page.reload()
    if not ready:  # (the test's code runs between Playwright's calls: nothing is heard in between)
        channel.value.wait_for_event("framereceived", predicate=lambda frame: '"ready"' in str(frame))
    card = page.locator(".invite").first
    card.locator(".log").click()
    expect(card.locator(".log-box tbody tr td").nth(4)).to_have_text("arriving (22%)")
    more = guest.http.patch(created.headers["Location"], content=b"y" * 280, headers=guest.tus_headers(**{
        "Upload-Offset": "220", "Content-Type": "application/offset+octet-stream"}))
    assert more.status_code == 204
    # bytes send no event: the open log asks again by itself while a file arrives (it stood at 0%
    # while the guest's page said 19%: walk)
    expect(card.locator(".log-box tbody tr td").nth(4)).to_have_text("arriving (50%)", timeout=15000)
    staged = drop.services.storage.data_path(uid)
    os.utime(staged, (staged.stat().st_atime, staged.stat().st_mtime - 601))  # no byte for ten minutes
    [row] = admin.call("GET", f"/api/invites/{invite['id']}/uploads").json()
    assert row["stopped"] is True
    expect(card.locator(".log-box tbody tr td").nth(4)).to_have_text("stopped at 50% Remove", timeout=15000)
    again = guest.http.patch(created.headers["Location"], content=b"z" * 300, headers=guest.tus_headers(**{
        "Upload-Offset": "500", "Content-Type": "application/offset+octet-stream"}))
    assert again.status_code == 204
    # its guest came back: a log of stopped files asks again too ("stopped" stood over 77%: re-walk)
    expect(card.locator(".log-box tbody tr td").nth(4)).to_have_text("arriving (80%)", timeout=15000)
    card.locator(".toggle").click()  # then its link is turned off, here
    # the open log stays open and says so (it closed as the card was drawn again: re-walk)
    card = page.locator(".invite").first
    expect(card.locator(".log-box tbody tr td").nth(4)).to_have_text("stopped at 80% Remove")
    page.on("dialog", lambda dialog: dialog.accept())  # "Remove clip.jpg? Its place ... is freed"
    card.locator(".remove-upload").click()  # its place in the link comes back
    # not "Nothing uploaded yet": a file was, and went (walk)
    expect(card.locator(".log-box tbody")).to_have_text("No files left in this list.")
    expect(card.locator(".log-note")).to_have_text("1 file removed.")  # beside the log, in sight
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["files"] == 0
    assert page.problems == []


def test_the_owner_removes_every_stopped_file_of_a_link_with_one_button(drop, admin_of, browser, fake):
    """Attack run: one guest's creations that never send a byte fill a link's places, and the log's
    Remove took a click each. With two or more stopped files the log offers to remove them all."""
    page = console(browser, drop, fake)
    admin = admin_of(drop)
    invite = admin.invite(label="Party", maxFiles=3)
    token = invite_token(invite)
    guest = drop.guest()
    guest.http.get(f"/i/{token}")
    for n in range(3):
        assert guest.create(1000, f"clip{n}.jpg", invite=token).status_code == 201
    page.reload()
    card = page.locator(".invite").first
    card.locator(".log").click()
    expect(card.locator(".log-box tbody tr")).to_have_count(3)
    expect(card.locator(".remove-stopped")).to_be_hidden()  # all three arriving (just made)
    card.locator(".toggle").click()  # turned off: all three stopped
    card = page.locator(".invite").first
    button = card.locator(".remove-stopped")
    expect(button).to_have_text("Remove the 3 stopped files")
    snap(page, "admin-log-stopped.png")
    card.locator(".remove-upload").first.focus()
    for _ in range(2):  # the open log asks again by itself (files on their way); by the second answer
        with page.expect_response(lambda r: r.url.endswith("/uploads") and r.request.method == "GET", timeout=15000):
            pass  # the first one is drawn, or not: nothing changed, so nothing is redrawn
    expect(card.locator(".remove-upload").first).to_be_focused()  # (each redraw took the focus: cold review)
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    button.click()
    # beside the log, where the owner is (the line at the top was out of sight: re-walk)
    expect(card.locator(".log-note")).to_have_text("3 files removed.")
    assert asked == ["Remove the 3 files stopped on their way? Their places in the link's limits are freed; "
                     "their guests would have to send them again."]
    expect(card.locator(".log-box tbody")).to_have_text("No files left in this list.")
    expect(button).to_be_hidden()
    assert admin.call("GET", f"/api/invites/{invite['id']}").json()["files"] == 0
    page.select_option("#lang", "de")  # the note follows the language
    expect(page.locator(".invite").first.locator(".log-note")).to_have_text("3 Dateien entfernt.")
    assert page.problems == []


def test_an_older_answer_of_the_log_arriving_last_does_not_replace_a_newer_one(drop, admin_of, browser, fake):
    """Every live event asks for the log again, and answers may cross (CI once showed the delivered
    photo above the refusal that came after it): the log shows the answer to the latest question."""
    page = console(browser, drop, fake, init_script=ANSWERS_READ)
    invite = admin_of(drop).invite(label="Party", mediaKind="photos")
    page.reload()
    card = page.locator(".invite").first
    card.locator(".log").click()
    expect(card.locator(".log-box tbody")).to_have_text("Nothing uploaded yet.")
    held = []  # (route, the server's answer when asked), handed to the page later
    page.route("**/api/invites/*/uploads", lambda route: held.append((route, route.fetch())))
    guest, token = drop.guest(), invite_token(invite)
    guest.wait_for(guest.invite_upload(MEDIA / "exif_offset.jpg", token), "done")
    expect(card.locator(".facts")).to_contain_text("1 use · 1 file, ")
    while len(held) < 2:  # the page asks again on each event: the file's creation, its delivery
        page.wait_for_timeout(20)
    assert all("refused" not in answer.text() for _, answer in held)
    assert guest.create(100, "clip.mp4", invite=token).status_code == 415
    while "refused" not in held[-1][1].text():
        page.wait_for_timeout(20)
    crossed = list(held)
    for n, (route, answer) in reversed(list(enumerate(crossed))):  # the newest answer first, the oldest last
        route.fulfill(response=answer, headers={**answer.headers, "x-test-answer": str(n)})
    page.wait_for_function("n => window.__read.length >= n", arg=len(crossed))
    assert page.evaluate("window.__read") == [str(n) for n in reversed(range(len(crossed)))]
    for n, (route, answer) in enumerate(held[len(crossed):], len(crossed)):  # none expected; newer anyway
        route.fulfill(response=answer, headers={**answer.headers, "x-test-answer": str(n)})
    page.wait_for_function("n => window.__read.length >= n", arg=len(held))
    rows = card.locator(".log-box tbody tr")
    assert rows.count() == 2
    assert "refused: not a photo" in rows.nth(0).inner_text() and "delivered" in rows.nth(1).inner_text()
    asked = len(held)
    assert guest.create(100, "song.mp4", invite=token).status_code == 415  # an event: the open log asks again
    while len(held) == asked:
        page.wait_for_timeout(20)
    card.locator(".log").click()  # closed before the answer came: the answer must not open it again
    assert card.locator(".log-wrap").is_hidden()
    route, answer = held[-1]
    route.fulfill(response=answer, headers={**answer.headers, "x-test-answer": "late"})
    page.wait_for_function("() => window.__read.indexOf('late') >= 0")
    assert card.locator(".log-wrap").is_hidden()


def test_copy_resets_share_and_the_labelled_theme_toggle(drop, admin_of, browser, fake):
    shared = "window.__shared = []; navigator.share = function (data) { window.__shared.push(data); return Promise.resolve(); };"
    page = console(browser, drop, fake, init_script=shared)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=drop.url)
    invite = admin_of(drop).invite(label="Trip", title="Our trip")
    page.reload()
    card = page.locator(".invite").first
    card.locator(".copy").click()
    expect(card.locator(".copy")).to_have_text("Copied")
    expect(card.locator(".copy")).to_have_text("Copy link")  # and back again
    card.locator(".share").click()
    assert page.evaluate("window.__shared") == [{"title": "Our trip", "url": invite["link"]}]
    theme = page.locator("#theme")
    expect(theme).to_contain_text("Theme")
    assert theme.get_attribute("title") == "Switch between light and dark mode"
    page.select_option("#lang", "de")
    expect(page.locator("#create button[type=submit]")).to_have_text("Link erstellen")
    expect(card.locator(".copy")).to_have_text("Link kopieren")
    expect(theme).to_contain_text("Design")


def test_a_browser_without_web_share_shows_no_share_button(drop, admin_of, browser, fake):
    page = console(browser, drop, fake, init_script="delete Navigator.prototype.share;")
    admin_of(drop).invite()
    page.reload()
    expect(page.locator(".invite .copy")).to_be_visible()
    assert page.locator(".invite .share").is_hidden()


def test_notification_addresses_in_the_console(drop, browser, fake):
    from test_notify import Receiver

    receiver = Receiver()
    try:
        page = console(browser, drop, fake, "narrow")
        page.fill("#notify-url", "nonsense://nowhere")
        page.click("#notify button[type=submit]")
        expect(page.locator('#notify .field-error[data-for="url"]')).to_have_text(
            "Apprise does not know how to send to this URL. For a web address taking JSON, write json:// or jsons:// "
            "instead of http:// or https://.", timeout=APPRISE_MS)
        page.fill("#notify-url", receiver.url)
        page.click("#notify button[type=submit]")
        expect(page.locator("#notify-urls li")).to_have_count(1, timeout=APPRISE_MS)
        assert "s3cr3t" not in page.locator("#notify-urls").inner_text()
        page.click("#notify-test")
        expect(page.locator("#notify-status")).to_have_text("Test sent. Check that it arrived.", timeout=APPRISE_MS)
        assert "test message" in receiver.next()["message"]
        no_sideways_scroll(page)
        # a digest that did not arrive is told here (owner walk: the console said nothing)
        expect(page.locator("#notify-failed")).to_be_hidden()
        at = datetime(2026, 12, 3, 6, 51, tzinfo=timezone.utc)
        [owner] = [uid for uid, user in fake.users.items() if user["email"] == "ada@example.org"]
        drop.server.call(drop.services.store.set_notify_failed(owner, json.dumps(["json://127.0.0.1/hook"]), at))
        page.reload()
        expect(page.locator("#notify-failed")).to_contain_text("The last notification (")
        expect(page.locator("#notify-failed")).to_contain_text("did not reach: json://127.0.0.1/hook. Check the address")
        page.select_option("#lang", "de")
        expect(page.locator("#notify-failed")).to_contain_text("kam nicht an bei: json://127.0.0.1/hook.")
        page.locator("#notify-urls button").click()
        expect(page.locator("#notify-urls li")).to_have_count(0)
    finally:
        receiver.server.stop()


def test_a_failed_test_message_is_told_in_the_owners_language(drop, browser, fake):
    """The console's refusals from the server (a test message not taken, a link or address gone,
    Immich away) came without a code and showed in English on a German console."""
    from test_notify import Receiver

    receiver = Receiver()
    page = console(browser, drop, fake, "narrow")
    page.select_option("#lang", "de")
    page.fill("#notify-url", receiver.url)
    page.click("#notify button[type=submit]")
    expect(page.locator("#notify-urls li")).to_have_count(1, timeout=APPRISE_MS)
    receiver.server.stop()  # the service is gone: the test message is not taken
    page.click("#notify-test")
    shown = page.locator("#notify-urls li").inner_text().split("\n")[0].strip()
    expect(page.locator("#notify-status")).to_have_text(
        f"Diese Adressen haben die Testnachricht nicht angenommen: {shown}. Prüfe sie.", timeout=APPRISE_MS)
    expect(page.locator("#notify-status")).to_have_class(re.compile(r"\berror\b"))  # a refusal, not grey (owner walk)
    page.select_option("#lang", "en")  # said again in the language chosen (re-walk)
    expect(page.locator("#notify-status")).to_have_text(
        f"These addresses did not accept the test message: {shown}. Check them.")
    assert page.problems == []


def test_the_console_uses_only_known_keys_and_no_bare_english():
    english = json.loads((WEB / "i18n" / "en.json").read_text())
    script = (WEB / "admin" / "admin.js").read_text()
    page = (WEB / "admin" / "index.html").read_text()
    used = set(re.findall(r"""(?:data-i18n="|:)(admin\.[\w.]+)""", page))
    used |= set(re.findall(r"""t\("(admin\.[\w.]+)""", script))
    used |= {f"{k}.other" for k in re.findall(r"""I18N\.n\("(admin\.[\w.]+)""", script)}
    used = {k for k in used if not k.endswith((".", "_"))}  # prefixes joined with a code: checked below
    assert used and sorted(k for k in used if k not in english) == []
    for prefix, names in [("admin.state.", ["active", "full", "expired", "used_up", "disabled", "deleted"]),
                          ("admin.field.kind_", ["all", "photos", "videos"]),
                          ("admin.log.state_", ["receiving", "received", "hashing", "uploading", "retrying", "done",
                                                "duplicate", "failed"])]:
        assert [n for n in names if prefix + n not in english] == []
    # Text the script writes itself always comes from the catalogs: no English sentence in a string.
    assert re.findall(r"""textContent = "[A-Z][a-z]+ """, script) == []


def test_a_sign_in_refusal_is_brought_into_view_on_a_small_phone(drop, browser, fake):
    """Re-walk: at 320x568 the answer to a key with a stray character lay below the screen."""
    context = browser.new_context(viewport={"width": 320, "height": 568}, is_mobile=True, has_touch=True,
                                  locale="en-US")
    page = context.new_page()
    page.goto(drop.url + "/admin")
    page.fill("#apikey", "garbage\U0001F642")
    page.locator("#apikey").evaluate("e => e.scrollIntoView({block: 'end'})")  # the field at the screen's foot
    page.press("#apikey", "Enter")
    expect(page.locator("#key-error")).to_have_text(
        "An Immich API key holds only letters, digits and punctuation: check what was pasted.")
    expect(page.locator("#key-error")).to_be_in_viewport()
    context.close()


@pytest.mark.parametrize("locale, wrong, key_refused", [
    ("de-DE", "E-Mail-Adresse oder Passwort ist falsch.", "Immich hat diesen API-Schlüssel nicht angenommen."),
    ("fr-FR", "Adresse e-mail ou mot de passe incorrect.", "Immich n'a pas accepté cette clé d'API."),
])
def test_sign_in_refusals_are_in_the_owners_language(drop, browser, fake, locale, wrong, key_refused):
    """The sign-in page was translated and its refusals were not: they came without a code."""
    fake.add_account("ada@example.org", "correct horse")
    context = browser.new_context(viewport=SIZES["narrow"], locale=locale)
    page = context.new_page()
    page.goto(drop.url + "/admin")
    page.fill("#email", "ada@example.org")
    page.fill("#pass", "wrong")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-error")).to_have_text(wrong)
    page.fill("#apikey", "not-a-key")
    page.click("#login-key button[type=submit]")
    expect(page.locator("#key-error")).to_have_text(key_refused)
    expect(page.locator("#login-error")).to_have_text("")  # one try's answer at a time (owner walk)
    context.close()


@pytest.mark.parametrize("size", ["desktop", "narrow"])
def test_checkboxes_keep_a_size_a_thumb_can_tap(drop, browser, fake, size):
    """Beside its long label, the "Review before the timeline" box shrank to 5 px wide on a phone."""
    page = console(browser, drop, fake, size)
    box = page.locator("#create .f-archive").bounding_box()
    assert box["width"] >= 16 and box["height"] >= 16, box
    page.locator("#create .f-archive").click()
    assert page.locator("#create .f-archive").is_checked()
    assert page.problems == []


def test_a_link_turns_expired_on_the_card_when_its_time_comes(drop, admin_of, browser, fake):
    """No event comes when a link expires: its card said "active" until the page was reloaded,
    though the owner's notice of the expiry had already arrived (owner walk)."""
    admin = admin_of(drop)
    soon = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(microsecond=0)
    admin.invite(label="Soon", expiresAt=soon.isoformat())
    admin.invite(label="Later", expiresAt=(soon + timedelta(days=30)).isoformat())
    fake.add_account("ada@example.org", "correct horse")
    context = browser.new_context(viewport=SIZES["desktop"], locale="en-US")
    page = context.new_page()
    page.clock.install()  # the page's own clock, moved on below; the server's is untouched
    page.goto(drop.url + "/admin")
    page.fill("#email", "ada@example.org")
    page.fill("#pass", "correct horse")
    page.click("#login button[type=submit]")
    soon_card, later_card = page.locator(".invite", has_text="Soon"), page.locator(".invite", has_text="Later")
    expect(soon_card.locator(".chip")).to_have_text("active")
    expect(soon_card.locator(".facts")).to_contain_text("expires ")
    page.clock.fast_forward("01:00:05")
    expect(soon_card.locator(".chip")).to_have_text("expired")
    expect(soon_card.locator(".facts")).to_contain_text("expired ")  # not "expires" a past date (owner walk)
    expect(soon_card.locator(".facts")).not_to_contain_text("expires ")
    expect(later_card.locator(".chip")).to_have_text("active")
    context.close()


def test_a_link_without_a_label_is_named_by_its_title_album_or_day(drop, admin_of, browser, fake):
    """Owner walk: links made without a label were all "Untitled link", which could not be told apart."""
    admin = admin_of(drop)
    admin.invite(label="", title="Grandma's garden")
    admin.invite(label="", album={"name": "Ski trip"})
    admin.invite(label="")
    page = console(browser, drop, fake)
    labels = page.locator(".invite .label")
    expect(labels).to_have_count(3)
    shown = sorted(labels.all_text_contents())
    assert shown[0] == "Grandma's garden" and shown[2] == "Ski trip", shown
    expect(page.locator(".invite", has_text="Grandma's garden").locator(".guest-title")).to_be_hidden()  # not twice
    assert re.fullmatch(r"Link made \w{3} \d+, \d{4}, .+", shown[1]), shown
    page.context.close()


def test_a_page_left_behind_by_a_new_sign_in_says_so_in_the_owners_language(drop, browser, fake):
    """Signed in again in another tab, an older tab's token is stale: its next change is refused,
    and the owner read "Missing or wrong CSRF token." in English whatever the console's language."""
    fake.add_account("ada@example.org", "correct horse")
    context = browser.new_context(viewport=SIZES["desktop"], locale="de-DE")
    old = context.new_page()
    old.goto(drop.url + "/admin")
    old.fill("#email", "ada@example.org")
    old.fill("#pass", "correct horse")
    old.click("#login button[type=submit]")
    expect(old.locator("#who")).to_have_text("ada@example.org")
    again = context.request.post(drop.url + "/api/login", headers={"Origin": drop.url},
                                 data={"email": "ada@example.org", "password": "correct horse"})
    assert again.ok  # another tab's sign-in: the browser's cookie is a new session now
    old.fill("#create .f-label", "Party")
    old.click("#create button[type=submit]")
    expect(old.locator("#create .form-error")).to_have_text(
        "Diese Seite ist veraltet (du hast dich zum Beispiel woanders neu angemeldet). "
        "Lade sie neu und versuche es noch einmal.")
    context.close()


def test_a_link_can_close_in_an_hour(drop, browser, fake):
    """For an evening's party the shortest choice was a day (owner walk): "in 1 hour" is one."""
    page = console(browser, drop, fake)
    page.fill("#create .f-label", "Toast")
    page.select_option("#create .f-expiry", "hour")
    before = datetime.now(timezone.utc)
    page.click("#create button[type=submit]")
    expect(page.locator(".invite", has_text="Toast").locator(".chip")).to_have_text("active")
    after = datetime.now(timezone.utc)
    [made] = [i for i in page.request.get(drop.url + "/api/invites").json() if i["label"] == "Toast"]
    expires = datetime.fromisoformat(made["expiresAt"])
    assert before + timedelta(minutes=59) <= expires <= after + timedelta(minutes=61)
    assert page.problems == []
    page.context.close()


def test_what_is_typed_in_a_number_field_is_what_is_asked_or_refused_under_it(drop, admin_of, browser, fake):
    """A browser's number input handed "2,5" over as 25 and "1e" or "--5" as "" (no limit), and the
    link was made with limits nobody asked for (owner walk). A decimal comma is a decimal; anything
    that is not a number is refused under its field, with the real cap."""
    page = console(browser, drop, fake)
    form = page.locator("#create")
    form.locator(".f-uses").select_option("n")
    form.locator(".f-uses-n").fill("99999999999999999999")
    form.locator(".f-max-file").fill("1e")
    form.locator(".f-max-total").fill("1,000")  # a thousands separator or a decimal one: asked, not guessed
    form.locator(".f-max-files").fill("3 files")
    form.locator("button[type=submit]").click()
    expect(error_of(form, "maxUses")).to_have_text(
        "Give how many browsers may use the link: a whole number from 1 to 1,000,000.")
    expect(error_of(form, "maxFileSize")).to_have_text(LIMIT_NUMBER)
    # "A number above 0" for 1,000 read as nonsense (owner walk): the question is the separator
    expect(error_of(form, "maxTotalBytes")).to_have_text(
        "Is that a thousands separator? Write the number without one: 1000, or 1.5 for one and a half.")
    expect(error_of(form, "maxFiles")).to_have_text(COUNT_NUMBER)
    assert page.locator(".invite").count() == 0
    form.locator(".f-uses-n").fill("12")
    form.locator(".f-max-file").fill("0,5")
    form.locator(".f-max-total").fill("2,5")
    form.locator(".f-max-files").fill("1,000")  # a count is whole: a thousand
    form.locator("button[type=submit]").click()
    expect(page.locator(".invite")).to_have_count(1)
    [made] = page.request.get(drop.url + "/api/invites").json()
    assert (made["maxUses"], made["limits"]["maxFileSize"], made["limits"]["maxTotalBytes"], made["limits"]["maxFiles"]) \
        == (12, 500_000, 2_500_000_000, 1000)
    # reopened, the sizes read in the language's decimal sign ("1.5" in a German form: owner walk),
    # and saved unchanged they stay as they were, "1.125" too (not asked about as a thousand)
    assert admin_of(drop).call("PATCH", f"/api/invites/{made['id']}",
                               json={"maxFileSize": 1_125_000, "maxTotalBytes": 5 * 2**30}).status_code == 200
    page.reload()
    page.select_option("#lang", "de")
    card = page.locator(".invite")
    card.locator(".edit").click()
    expect(card.locator(".f-max-total")).to_have_value("5,36870912")  # 5 GiB to the byte (cold review)
    expect(card.locator(".f-max-file")).to_have_value("1,1250")
    card.locator(".edit-box button[type=submit]").click()
    expect(card.locator(".card-note")).to_have_text("Änderungen gespeichert.")
    [saved] = page.request.get(drop.url + "/api/invites").json()
    assert (saved["limits"]["maxFileSize"], saved["limits"]["maxTotalBytes"]) == (1_125_000, 5 * 2**30)
    assert page.problems == []
    page.context.close()



def test_a_console_whose_session_ran_out_says_so(drop, browser, fake):
    """The session's end gave the sign-in form without a word, and the owner's click was lost (owner
    walk). At its time the console asks the server, and on its 401 says why it asks for a sign-in."""
    fake.add_account("ada@example.org", "correct horse")
    context = browser.new_context(viewport=SIZES["desktop"], locale="fr-FR")
    page = context.new_page()
    page.clock.install()  # the page's clock, moved on below; the server's session is ended by hand
    page.goto(drop.url + "/admin")
    page.fill("#email", "ada@example.org")
    page.fill("#pass", "correct horse")
    page.click("#login button[type=submit]")
    expect(page.locator("#who")).to_have_text("ada@example.org")
    expires = datetime.fromisoformat(page.request.get(drop.url + "/api/session").json()["expiresAt"])
    drop.server.call(drop.services.store.delete_expired_admin_sessions(expires + timedelta(seconds=1)))
    page.clock.fast_forward(int((expires - datetime.now(timezone.utc)).total_seconds() * 1000) + 5000)
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-error")).to_have_text("Votre session a expiré. Reconnectez-vous pour continuer.")
    # the page's clock back to the server's: ahead by a session, it found the next session at its end
    # at once and asked again and again, and one answer after the deletion below beat the click (CI)
    page.clock.set_system_time(datetime.now(timezone.utc))
    page.fill("#email", "ada@example.org")
    page.fill("#pass", "correct horse")
    page.click("#login button[type=submit]")
    expect(page.locator("#who")).to_have_text("ada@example.org")
    expect(page.locator("#login-error")).to_have_text("")
    page.fill("#create .f-label", "Toast")
    page.click("#create button[type=submit]")
    expect(page.locator(".invite", has_text="Toast")).to_have_count(1)
    # ended before its time (signed out elsewhere): the first action says so
    drop.server.call(drop.services.store.delete_expired_admin_sessions(expires + timedelta(days=365)))
    # the action, without waiting for the button to be actionable: under load the page may learn it
    # on its own first (its live channel ends with the session) and show the sign-in already (CI)
    page.locator(".invite .toggle").dispatch_event("click")
    # that the click was not saved, when the click was what found the session gone (owner walk)
    expect(page.locator("#login-error")).to_have_text(
        "Votre session a expiré et ce que vous venez de faire n'a pas été enregistré. Reconnectez-vous pour continuer.")
    expect(page.locator("#flash")).to_be_hidden()  # one word: "Sign in first." stood above it too (owner walk)
    context.close()


def test_switching_language_leaves_no_stale_words_in_the_log_or_an_edit_form(drop, admin_of, browser, fake):
    """Owner walk: after a switch to French the log's rows still said "delivered", and an Edit form's
    "New password (empty: keep it)" became the creation's "Passwort (optional)": the link looked as
    if it had no password."""
    invite = admin_of(drop).invite(label="Locked", password="open sesame")
    guest = drop.guest()
    token = invite_token(invite)
    guest.http.get(f"/i/{token}")
    guest.http.post(f"/api/i/{token}/unlock", json={"password": "open sesame"})
    guest.wait_for(guest.invite_upload(MEDIA / "exif_offset.jpg", token), "done")
    page = console(browser, drop, fake)
    card = page.locator(".invite").first
    card.locator(".log").click()
    expect(card.locator(".log-box tbody tr").nth(0)).to_contain_text("delivered")
    card.locator(".edit").click()
    label = card.locator(".l-password")
    expect(label).to_have_text("New password (empty: keep it)")
    form = page.locator("#create")
    form.locator(".f-max-files").fill("2.5")
    form.locator("button[type=submit]").click()
    expect(error_of(form, "maxFiles")).to_have_text(COUNT_NUMBER)
    page.select_option("#lang", "fr")
    expect(card.locator(".log-box tbody tr").nth(0)).to_contain_text("livré")
    expect(label).to_have_text("Nouveau mot de passe (vide : inchangé)")
    # a refusal already shown, and the line under its form, are said again in French
    expect(error_of(form, "maxFiles")).to_have_text("Un nombre entier de 1 à 1 000 000, ou vide pour aucune limite.")
    expect(form.locator(".form-error")).not_to_contain_text("Some fields")
    assert page.problems == []
    page.context.close()


def test_signing_out_leaves_nothing_of_the_owners_on_the_screen(drop, browser, fake):
    """The last link created stood above the sign-in form after "Sign out" (owner walk): on a shared
    computer the next person could take a one-time link that has no password."""
    page = console(browser, drop, fake)
    page.fill("#create .f-label", "Grandma")
    page.fill("#create .f-title", "Send Grandma your photos")
    page.click("#create button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("/i/")
    page.fill("#create .f-label", "half typed")
    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#flash")).to_be_hidden()
    assert "/i/" not in page.locator("body").inner_text()
    page.fill("#email", "ada@example.org")
    page.fill("#pass", "correct horse")
    page.click("#login button[type=submit]")
    expect(page.locator("#who")).to_have_text("ada@example.org")
    expect(page.locator("#create .f-label")).to_have_value("")
    assert page.problems == []
    page.context.close()


def test_the_largest_file_hint_is_in_the_fields_own_unit(drop, browser, fake):
    """French: "au plus 60 MB" stood in a field labelled "(Mo)" (owner walk)."""
    page = console(browser, drop, fake)
    page.select_option("#lang", "fr")
    expect(page.locator("#create .f-max-file")).to_have_attribute("placeholder", re.compile(r"^au plus 60\s?Mo$"))
    page.select_option("#lang", "en")
    expect(page.locator("#create .f-max-file")).to_have_attribute("placeholder", re.compile(r"^at most 60\s?MB$"))
    page.context.close()


def test_deleting_a_link_says_so(drop, browser, fake):
    """A deleted link's card went without a word, under an earlier "Changes saved." (owner walk)."""
    page = console(browser, drop, fake)
    page.fill("#create .f-label", "Cousins")
    page.click("#create button[type=submit]")
    card = page.locator(".invite", has_text="Cousins")
    expect(card).to_have_count(1)
    page.on("dialog", lambda dialog: dialog.accept())
    card.locator(".delete").click()
    expect(page.locator("#flash")).to_have_text("Link deleted: it takes no more files. What it brought stays in Immich.")
    expect(card).to_have_count(0)
    assert page.problems == []
    page.context.close()


def test_a_list_read_before_a_new_link_cannot_hide_it(drop, browser, fake):
    """The channel's "ready" reads the list as a new link's form does; in CI the older answer came
    last and drew the list without the link just made. Here it is made to come last."""
    fake.add_account("ada@example.org", "correct horse")
    page = browser.new_context(viewport=SIZES["desktop"], locale="en-US").new_page()
    held, stale_request = [], []

    def older_answer_last(route):
        if not stale_request:  # the list as it was before the link: kept back
            held.append((route, route.fetch()))
            stale_request.append(route.request)
            return
        route.fulfill(response=route.fetch())
        first, stale = held.pop()
        first.fulfill(response=stale)

    page.route("**/api/invites", lambda route: older_answer_last(route) if route.request.method == "GET" else route.fallback())
    page.goto(drop.url + "/admin")
    page.fill("#email", "ada@example.org")
    page.fill("#pass", "correct horse")
    with page.expect_request(lambda r: r.url.endswith("/api/invites") and r.method == "GET"):
        page.click("#login button[type=submit]")
    page.fill("#create .f-label", "Cousins")
    with page.expect_response(lambda r: held == [] and r.request == stale_request[0]) as last:
        page.click("#create button[type=submit]")
    last.value.finished()
    page.evaluate("fetch('/healthz').then(function (r) { return r.text(); })")  # a turn after the stale answer
    expect(page.locator("#flash")).to_contain_text("Link created")
    assert page.locator(".invite", has_text="Cousins").count() == 1
    page.context.close()


def test_lowering_a_limit_to_what_the_link_has_asks_first(drop, admin_of, browser, fake):
    """"How many browsers" lowered to the two that had used the link closed it, and only the card's
    "2 of 2 uses" said so afterwards (owner walk): the console says what the new limits do, and
    saves only if the owner agrees. Renaming such a link asks nothing."""
    page = console(browser, drop, fake)
    invite = admin_of(drop).invite(label="Family", maxUses=5)
    for photo in ("exif_offset.jpg", "no_date.jpg"):  # two browsers, a photo each
        guest = Guest(drop.url)
        guest.invite_upload(MEDIA / photo, invite_token(invite))
        guest.close()
    page.reload()
    card = page.locator(".invite", has_text="Family")
    expect(card.locator(".facts")).to_contain_text("2 of 5 uses · 2 files")
    asked = []

    def answer(dialog, yes):
        asked.append(dialog.message)
        dialog.accept() if yes else dialog.dismiss()

    card.locator(".edit").click()
    edit = card.locator(".edit-box")
    edit.locator(".f-uses-n").fill("2")
    edit.locator(".f-max-files").fill("2")
    edit.locator(".f-max-total").fill("0.000001")  # 1 kB
    page.once("dialog", lambda dialog: answer(dialog, False))
    with page.expect_event("dialog"):
        edit.locator("button[type=submit]").click()
    uses, files, total, _, question = asked[0].split("\n")
    assert uses == "2 browsers have already used this link: with at most 2, it takes no new browser."
    assert files == "This link already has 2 files: with at most 2, it takes no more."
    assert re.fullmatch(r"This link already has [\d.]+\skB: with at most 1\skB, it takes no more\.", total), total
    assert question == "Save anyway?"
    expect(edit).to_be_visible()  # not saved: the form stays, as the owner left it
    assert drop.server.call(drop.services.store.get_invite(invite["id"])).max_uses == 5
    page.once("dialog", lambda dialog: answer(dialog, True))
    with page.expect_response(lambda r: r.request.method == "PATCH"):
        edit.locator("button[type=submit]").click()
    expect(card.locator(".card-note")).to_have_text("Changes saved.")
    expect(card.locator(".facts")).to_contain_text("2 of 2 uses · 2 files")
    card.locator(".edit").click()
    assert card.locator(".edit-box .f-max-total").input_value() == "0.000001"  # (to the byte: cold review)
    card.locator(".edit-box .f-label").fill("Family (full)")
    page.on("dialog", lambda dialog: asked.append(dialog.message) or dialog.dismiss())
    card.locator(".edit-box button[type=submit]").click()
    expect(page.locator(".invite", has_text="Family (full)")).to_have_count(1)
    assert len(asked) == 2 and page.problems == []
    page.context.close()


def test_on_a_phone_a_saved_or_new_link_says_so_on_its_card_in_sight(drop, admin_of, browser, fake):
    """On a phone, "Changes saved." stood 2,000 px above while the screen showed the new-link form
    (the saved edit's form closed under it), and "Link created" as far (owner walk)."""
    page = console(browser, drop, fake, size="narrow")
    admin = admin_of(drop)
    for n in range(4):
        admin.invite(label=f"Table {n}", title="Anna & Tom's wedding " * 4)
    page.reload()
    card = page.locator(".invite", has_text="Table 0")
    card.locator(".edit").click()
    card.locator(".edit-box .f-title").fill("Our wedding")
    card.locator(".edit-box button[type=submit]").click()
    expect(card.locator(".card-note")).to_have_text("Changes saved.")
    expect(card.locator(".card-note")).to_be_in_viewport()
    expect(page.locator("#flash")).to_be_hidden()
    snap(page, "console-320-saved.png")
    page.click("#list .to-create a")
    page.fill("#create .f-label", "Table 9")
    page.click("#create button[type=submit]")
    made = page.locator(".invite", has_text="Table 9")
    expect(made.locator(".card-note")).to_have_text("Link created: share it with Copy link or the QR code.")
    expect(made.locator(".card-note")).to_be_in_viewport()
    assert page.problems == []
    page.context.close()


def test_on_a_phone_an_owner_with_links_sees_them_first(drop, browser, fake):
    """On a phone the 13-field form came first and the links 1,100 px below it (owner walk): with
    links, a phone shows them first and a line leads to the form; a desktop keeps the form first."""
    page = console(browser, drop, fake, size="narrow")
    assert page.locator("#create").bounding_box()["y"] < page.locator("#list").bounding_box()["y"]  # none yet
    expect(page.locator("#list .to-create")).to_be_hidden()
    page.fill("#create .f-label", "Party")
    page.click("#create button[type=submit]")
    expect(page.locator(".invite", has_text="Party")).to_have_count(1)
    page.reload()
    expect(page.locator(".invite", has_text="Party")).to_have_count(1)
    assert page.locator("#list").bounding_box()["y"] < page.locator("#create").bounding_box()["y"]
    assert page.locator(".invite", has_text="Party").bounding_box()["y"] < page.viewport_size["height"]
    page.click("#list .to-create a")
    expect(page.locator("#create .f-label")).to_be_in_viewport()
    no_sideways_scroll(page)
    page.set_viewport_size(SIZES["desktop"])
    expect(page.locator("#list .to-create")).to_be_hidden()
    assert page.locator("#create").bounding_box()["y"] < page.locator("#list").bounding_box()["y"]
    assert page.problems == []
    page.context.close()
