"""The guest experience on a phone, in a real browser (Debian's Chromium, headless, Playwright).

Slow links are made with Chromium's own network throttling, a cut with its offline switch; a recorder
in front of the app counts the body bytes the server really received for each upload.
"""

import re

import pytest
from browser_kit import PHONE, browser, needs_chromium, page, playwright  # noqa: F401 - fixtures

from conftest import MEDIA, invite_token, make_file, sha1_of

pytestmark = needs_chromium
PHONE = {**PHONE, "viewport": {"width": 390, "height": 844}, "device_scale_factor": 2}
CHUNK = 256 * 1024


class Recorder:
    """ASGI wrapper: the PATCH body bytes that reached the server, per upload, and each PATCH's offset."""

    def __init__(self, app):
        self.app, self.received, self.offsets = app, {}, {}

    @property
    def services(self):
        return self.app.services

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "PATCH":
            return await self.app(scope, receive, send)
        uid = scope["path"].rsplit("/", 1)[-1]
        headers = dict(scope["headers"])
        self.offsets.setdefault(uid, []).append(int(headers.get(b"upload-offset", b"-1")))

        async def counting():
            message = await receive()
            if message["type"] == "http.request":
                self.received[uid] = self.received.get(uid, 0) + len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


@pytest.fixture
def recorded(make_drop):
    """A drop whose app sits behind a Recorder; returns (drop, recorder)."""
    drop = make_drop(CHUNK_SIZE=str(CHUNK), PUBLIC_UPLOAD_PAGE_ENABLED="false", wrap=Recorder)
    return drop, drop.served


@pytest.fixture
def phone(page):
    return page


class Network:
    """Chromium's network emulation for one page: a slow uplink, and a switch to cut it."""

    def __init__(self, page, bytes_per_second: int):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        self.rate = bytes_per_second
        self.online(True)

    def online(self, on: bool) -> None:
        self.cdp.send("Network.emulateNetworkConditions", {"offline": not on, "latency": 0, "downloadThroughput": -1,
                                                           "uploadThroughput": self.rate})


def throttle(page, bytes_per_second: int) -> Network:
    return Network(page, bytes_per_second)


def link(drop, admin_of, **fields) -> str:
    return drop.url + "/i/" + invite_token(admin_of(drop).invite(**fields))


def test_guest_sends_photos_and_a_video_through_an_invite(make_drop, admin_of, phone, tmp_path):
    expect = playwright.expect
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    url = link(drop, admin_of, title="Anna & Tom's wedding", album={"name": "Wedding"})
    video = make_file(tmp_path / "first-dance.mp4", 3 * 1024 * 1024 + 5, seed=4)
    files = [MEDIA / "exif_offset.jpg", MEDIA / "exif_offset.heic", MEDIA / "no_date.jpg", video]
    phone.goto(url)
    expect(phone.locator("#title")).to_have_text("Anna & Tom's wedding")
    phone.set_input_files("#picker", [str(f) for f in files])
    expect(phone.locator(".item[data-kind=done]")).to_have_count(4, timeout=30000)
    expect(phone.locator("#finished-text")).to_contain_text("Finished: 4 sent.")
    expect(phone.locator("#keep-open")).to_be_hidden()
    received = sorted((r.filename, r.sha1) for r in drop.fake.uploads)
    assert received == sorted((f.name, sha1_of(f)) for f in files)  # each byte-identical
    assert drop.fake.upload_bodies == len(files)  # and sent once (the fake answers a second one "duplicate")
    # chosen again: the server is asked, and the file keeps its one row (it stood twice: guest walk)
    with phone.expect_response(lambda r: r.url.endswith("/api/already")) as asked:
        phone.set_input_files("#picker", [str(MEDIA / "exif_offset.jpg")])
    assert asked.value.json()["already"] is True
    expect(phone.locator(".item")).to_have_count(4)
    expect(phone.locator(".item").nth(0).locator(".chip")).to_have_text("done")
    # ...which says so a moment: nothing on the screen changed (guest walk)
    expect(phone.locator(".item").nth(0).locator(".again-note")).to_have_text("Chosen again: this file is already here.")
    assert phone.problems == []


def test_files_chosen_after_the_others_are_done_have_an_overall_bar_of_their_own(recorded, admin_of, phone, tmp_path):
    """Walk: one new photo at 15% read "90 % of 44.2 MB": the files done before were counted in."""
    expect = playwright.expect
    drop, recorder = recorded
    phone.goto(link(drop, admin_of))
    phone.set_input_files("#picker", [str(make_file(tmp_path / "first.jpg", 3 * 1024 * 1024, seed=4))])
    expect(phone.locator(".item[data-kind=done]")).to_have_count(1, timeout=30000)
    throttle(phone, 1_000_000)
    phone.set_input_files("#picker", [str(make_file(tmp_path / "speech.mp4", 40 * CHUNK + 123, seed=9))])
    expect(phone.locator(".item").nth(1).locator(".chip")).to_have_text(re.compile(r"^[1-9]\d?%$"), timeout=30000)
    overall = phone.locator("#overall").text_content()
    assert re.match(r"^(\d+)% of 10.5 MB", overall) and int(overall.split("%")[0]) < 90, overall
    expect(phone.locator(".item[data-kind=done]")).to_have_count(2, timeout=60000)
    expect(phone.locator("#finished-text")).to_have_text("Finished: 2 sent.")  # the page's files, all of them
    assert phone.problems == []


def test_connection_cut_in_the_middle_resumes_by_itself(recorded, admin_of, phone, tmp_path):
    expect = playwright.expect
    drop, recorder = recorded
    url = link(drop, admin_of)
    big = make_file(tmp_path / "speech.mp4", 40 * CHUNK + 123, seed=9)
    phone.goto(url)
    network = throttle(phone, 1_000_000)
    phone.set_input_files("#picker", [str(big)])
    chip = phone.locator(".item .chip")
    expect(chip).to_have_text(re.compile(r"^(2\d|3\d|4\d)%$"), timeout=30000)
    expect(phone.locator("#keep-open")).to_be_visible()
    expect(phone.locator("#overall")).to_contain_text("% of 10.5 MB")
    network.online(False)  # a pause, not a failure: progress kept, the bar stays, no summary, leaving asks
    expect(phone.locator(".item .chip")).to_have_text("waiting for network", timeout=20000)
    expect(phone.locator(".item .detail")).to_have_text("No network. It continues by itself when you are back online.")
    expect(phone.locator("#overall")).to_contain_text("waiting for network")
    expect(phone.locator("#keep-open")).to_be_visible()
    assert phone.locator("#finished").is_hidden() and phone.locator(".item .retry").is_hidden()
    assert int(phone.get_attribute(".item .progress", "aria-valuenow")) >= 20
    assert not drop.fake.uploads
    network.online(True)  # the page resumes on "online", without a click
    expect(phone.locator(".item[data-kind=done]")).to_have_count(1, timeout=60000)
    [uid] = recorder.received
    assert recorder.received[uid] <= big.stat().st_size + CHUNK  # at most one chunk sent twice
    assert [r.sha1 for r in drop.fake.uploads] == [sha1_of(big)]


def test_reload_offers_the_unfinished_file_and_continues_it(recorded, admin_of, browser, tmp_path):
    expect = playwright.expect
    drop, recorder = recorded
    url = link(drop, admin_of, maxFiles=1)  # the link's only place is this file's, after the reload too
    big = make_file(tmp_path / "ceremony.mov", 40 * CHUNK + 77, seed=12)
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(url)
    throttle(page, 1_000_000)
    page.set_input_files("#picker", [str(big)])
    expect(page.locator(".item .chip")).to_have_text(re.compile(r"^(2\d|3\d|4\d)%$"), timeout=30000)
    page.reload()
    expect(page.locator("#unfinished")).to_have_text(
        "1 file not finished: ceremony.mov. Choose it again to continue where it stopped.")
    expect(page.locator("#details")).to_contain_text("0 more files")
    expect(page.locator("#drop .pickers")).to_be_visible()  # full, but the file that holds its place is to be chosen
    page.set_input_files("#picker", [str(big)])
    # Owner walk: the bytes sent before the reload were counted as speed ("about 2 seconds left" of
    # 12). About 6 MB are left at 1 MB/s: the first estimate says at least 3 seconds.
    expect(page.locator("#overall")).to_contain_text("left", timeout=30000)
    first = re.search(r"about (\d+) (second|minute)", page.locator("#overall").text_content())
    assert first and (first[2] == "minute" or int(first[1]) >= 3), page.locator("#overall").text_content()
    expect(page.locator(".item[data-kind=done]")).to_have_count(1, timeout=60000)
    expect(page.locator("#unfinished")).to_be_hidden()
    expect(page.locator("#drop-hint")).to_have_text("This link takes no more files.")
    expect(page.locator("#drop .pickers")).to_be_hidden()
    expect(page.locator("#who")).to_be_hidden()  # nothing more to send: nobody to ask who sends it
    [uid] = recorder.offsets  # one tus upload, before and after the reload
    assert recorder.offsets[uid][0] == 0 and recorder.offsets[uid] == sorted(recorder.offsets[uid])
    assert recorder.received[uid] <= big.stat().st_size + CHUNK  # continued, not started over
    assert [r.sha1 for r in drop.fake.uploads] == [sha1_of(big)]
    context.close()


def test_leaving_while_uploading_asks_first(recorded, admin_of, phone, tmp_path):
    expect = playwright.expect
    drop, _ = recorded
    phone.goto(link(drop, admin_of))
    throttle(phone, 500_000)
    phone.set_input_files("#picker", [str(make_file(tmp_path / "long.mp4", 20 * CHUNK, seed=2))])
    expect(phone.locator(".item .chip")).to_have_text(re.compile(r"^\d+%$"), timeout=30000)
    dialogs = []
    phone.on("dialog", lambda d: (dialogs.append(d.type), d.dismiss()))
    phone.close(run_before_unload=True)
    expect(phone.locator("#keep-open")).to_be_visible()  # still open: the guest was asked
    assert dialogs == ["beforeunload"]


def test_screen_stays_on_while_uploading(recorded, admin_of, browser, tmp_path):
    expect = playwright.expect
    drop, _ = recorded
    context = browser.new_context(**PHONE)
    # Headless Chromium grants no wake lock; a stand-in records what the page asks for.
    context.add_init_script("""
        window.__locks = {requested: 0, released: 0};
        Object.defineProperty(navigator, 'wakeLock', {value: {request: function () {
            window.__locks.requested += 1;
            var handlers = [];
            var lock = {released: false, addEventListener: function (n, f) { handlers.push(f); },
                        release: function () { window.__locks.released += 1; handlers.forEach(function (f) { f(); });
                                               return Promise.resolve(); }};
            window.__lastLock = lock;
            return Promise.resolve(lock);
        }}});
    """)
    page = context.new_page()
    page.goto(link(drop, admin_of))
    throttle(page, 1_000_000)
    page.set_input_files("#picker", [str(make_file(tmp_path / "v.mp4", 16 * CHUNK, seed=3))])
    expect(page.locator(".item .chip")).to_have_text(re.compile(r"^\d+%$"), timeout=30000)
    assert page.evaluate("window.__locks.requested") == 1
    # The system drops the lock when the tab is hidden; on return the page takes it again.
    page.evaluate("window.__lastLock.release(); document.dispatchEvent(new Event('visibilitychange'))")
    assert page.evaluate("window.__locks.requested") == 2
    expect(page.locator(".item[data-kind=done]")).to_have_count(1, timeout=60000)
    assert page.evaluate("window.__locks.released") == 2  # given back when nothing is left to send
    context.close()


def test_keyboard_and_announcements(make_drop, admin_of, phone):
    expect = playwright.expect
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    phone.goto(link(drop, admin_of))
    expect(phone.locator("#who-name")).to_be_visible()  # the page is whole (the link's settings are in)
    focused = []
    for _ in range(8):  # language, theme, name, message, then the two pickers
        phone.keyboard.press("Tab")
        focused.append(phone.evaluate("document.activeElement.id || document.activeElement.textContent"))
    assert "picker" in focused and "picker-files" in focused
    assert phone.get_attribute("#summary", "aria-live") == "polite"
    assert phone.locator("#theme").get_attribute("aria-label")
    phone.set_input_files("#picker", [str(MEDIA / "no_date.jpg")])
    expect(phone.locator("#summary")).to_have_text("1 sent", timeout=20000)


def test_dark_mode_carries_over_to_the_console(make_drop, admin_of, browser):
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    context = browser.new_context(color_scheme="light")
    page = context.new_page()
    page.goto(link(drop, admin_of))
    page.click("#theme")
    page.goto(drop.url + "/admin")
    assert page.get_attribute("html", "data-theme") == "dark"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(18, 18, 22)"
    context.close()


def test_converted_photos_are_pointed_out_on_iphones(make_drop, admin_of, browser):
    expect = playwright.expect
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    url = link(drop, admin_of)
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
    context = browser.new_context(user_agent=iphone, **PHONE)
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#converted")).to_be_visible()  # before choosing, where it applies
    page.click("#converted-ok")
    expect(page.locator("#converted")).to_be_hidden()
    page.set_input_files("#picker", [str(MEDIA / "exif_offset.jpg")])
    expect(page.locator(".item[data-kind=done]")).to_have_count(1, timeout=20000)
    page.reload()  # said once
    expect(page.locator("#drop")).to_be_visible()
    expect(page.locator("#converted")).to_be_hidden()
    context.close()
    android = browser.new_context(**PHONE)  # not an iPhone: never shown
    other = android.new_page()
    other.goto(url)
    expect(other.locator("#drop")).to_be_visible()
    assert other.locator("#converted").is_hidden()
    android.close()


def test_summary_names_failures_and_retries_them(make_drop, admin_of, phone, tmp_path):
    expect = playwright.expect
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    phone.goto(link(drop, admin_of, maxFileSize=2000))
    big = make_file(tmp_path / "big.jpg", 5000)
    page_html = tmp_path / "page.jpg"  # the page takes it (a .jpg, small); the server reads its first bytes
    page_html.write_bytes(b"<!doctype html><html><body>not a photo</body></html>")
    phone.set_input_files("#picker", [str(MEDIA / "no_date.jpg"), str(big), str(page_html)])
    # refused by the link's rules, by the page or by the server, is "not accepted": nothing failed
    # (they read "failed", as a file Immich could not take does: walk)
    expect(phone.locator("#finished-text")).to_have_text(
        "Finished: 1 sent, 2 not accepted.\n"
        "page.jpg: This file is named like a photo or video (.jpg), but its content is not one.\n"
        "big.jpg: Files may be at most 2 kB here.", timeout=20000)
    expect(phone.locator(".item .chip", has_text="not accepted")).to_have_count(2)
    expect(phone.locator("#summary")).to_have_text("1 sent · 2 not accepted")  # (it said "2 failed": cold review)
    # a retry cannot make the file smaller: none offered
    assert phone.locator("#retry-all").is_hidden() and phone.locator(".item .retry").first.is_hidden()
    assert len(drop.fake.uploads) == 1


@pytest.mark.parametrize("locked", [False, True], ids=["open", "password"])
def test_files_chosen_before_the_page_is_ready_are_kept(make_drop, admin_of, phone, locked):
    """A guest on a slow connection may pick files before /api/config answers: they are sent once it
    does (for a link with a password, once it is unlocked), not dropped."""
    expect = playwright.expect
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    url = link(drop, admin_of, password="sesame-42") if locked else link(drop, admin_of)
    held = []
    phone.route("**/api/config", lambda route: held.append(route))  # the settings answer waits until let go
    with phone.expect_request("**/api/config"):
        phone.goto(url)
    phone.set_input_files("#picker", [str(MEDIA / "exif_offset.jpg"), str(MEDIA / "no_date.jpg")])
    held[0].continue_()
    if locked:
        expect(phone.locator("#unlock")).to_be_visible()
        assert phone.locator(".item").count() == 0  # held, not sent into a refusal
        phone.fill("#password", "sesame-42")
        phone.click("#unlock button")
    expect(phone.locator("#finished-text")).to_contain_text("Finished: 2 sent.")
    assert sorted(u.filename for u in drop.fake.uploads) == ["exif_offset.jpg", "no_date.jpg"]
