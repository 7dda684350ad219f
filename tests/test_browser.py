"""The guest page in a real browser: Debian's Chromium driven by Playwright, on a phone viewport."""

import shutil

import pytest
from browser_kit import PHONE, browser, needs_chromium, page, playwright, snap  # noqa: F401 - fixtures

from conftest import MEDIA, sha1_of

pytestmark = needs_chromium


def test_guest_sends_photos_and_a_video_from_a_phone(drop, page, tmp_path):
    expect = playwright.expect
    hostile = tmp_path / '<img src=x onerror="document.title=1">.jpg'
    shutil.copyfile(MEDIA / "no_date.jpg", hostile)
    files = [MEDIA / "exif_offset.jpg", MEDIA / "creation_time.mp4", MEDIA / "exif_offset.heic", hostile]

    page.goto(drop.url + "/")
    assert page.get_attribute("#picker", "capture") is None  # phones offer the library, not only the camera
    page.set_input_files("#picker", [str(f) for f in files])
    expect(page.locator(".item[data-kind=done]")).to_have_count(4, timeout=30000)
    expect(page.locator("#summary")).to_have_text("4 sent")
    # chosen again: the server is asked, and the file keeps its one row (it stood twice: guest walk)
    with page.expect_response(lambda r: r.url.endswith("/api/already")) as asked:
        page.set_input_files("#picker", [str(MEDIA / "exif_offset.jpg")])
    assert asked.value.json()["already"] is True
    expect(page.locator(".item")).to_have_count(4)
    expect(page.locator(".item").nth(0).locator(".chip")).to_have_text("done")

    names = page.locator(".item .name").all_text_contents()
    assert hostile.name in names  # shown as text...
    assert page.locator(".queue img").count() == 0 and page.title() != "1"  # ...never as HTML
    received = {r.filename: r.sha1 for r in drop.fake.uploads}
    assert received == {f.name: sha1_of(f) for f in files}
    assert page.problems == []


def test_refusals_are_shown_with_the_servers_message(make_drop, page, tmp_path):
    drop = make_drop(MAX_UPLOAD_SIZE="1000")
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    page.goto(drop.url + "/")
    page.set_input_files("#picker", [str(text), str(MEDIA / "exif_offset.jpg")])
    items = page.locator(".item")
    playwright.expect(items.nth(0).locator(".detail")).to_have_text("Files of type .txt cannot go into a photo library.", timeout=20000)
    playwright.expect(items.nth(1).locator(".detail")).to_have_text("This file is larger than the 1 kB allowed.")
    assert items.nth(1).locator(".retry").is_hidden()  # no retry where a retry cannot work


def test_dark_mode_toggle_persists(drop, page):
    page.goto(drop.url + "/")
    page.emulate_media(color_scheme="light")
    page.click("#theme")
    assert page.get_attribute("html", "data-theme") == "dark"
    page.reload()
    assert page.get_attribute("html", "data-theme") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 18, 22)"


def test_admin_creates_a_link_and_a_guest_uses_it(make_drop, browser, fake, tmp_path):
    expect = playwright.expect
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    fake.add_account("ada@example.org", "correct horse")
    admin = browser.new_context(viewport={"width": 1100, "height": 900})
    admin.grant_permissions(["clipboard-read", "clipboard-write"], origin=drop.url)
    page = admin.new_page()
    problems = []
    page.on("pageerror", lambda err: problems.append(str(err)))
    page.goto(drop.url + "/admin")
    page.fill("#email", "ada@example.org")
    page.fill("#pass", "wrong")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("Wrong email or password.")
    page.fill("#pass", "correct horse")
    page.click("#login button[type=submit]")
    expect(page.locator("#who")).to_have_text("ada@example.org")

    page.fill("#create .f-label", "Anna (private)")
    page.fill("#create .f-title", "<b>Anna's</b> wedding")
    page.select_option("#create .f-album", "__new")
    page.fill("#create .f-new-album", "Wedding")
    page.select_option("#create .f-uses", "1")
    page.select_option("#create .f-expiry", "7")
    page.fill("#create .f-password", "open sesame")
    page.click("#create button[type=submit]")
    card = page.locator(".invite").first
    expect(card.locator(".label")).to_have_text("Anna (private)")
    expect(card.locator(".guest-title")).to_have_text("Guests see: <b>Anna's</b> wedding")  # text, not markup
    expect(card.locator(".chip")).to_have_text("active")
    link = card.locator(".link").input_value()
    assert link.startswith(drop.url + "/i/")
    card.locator(".copy").click()
    expect(card.locator(".copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == link
    card.locator(".qr").click()
    expect(card.locator(".qr-box img")).to_be_visible()
    assert card.locator(".qr-box img").evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    card.locator(".toggle").click()
    expect(page.locator(".invite .chip").first).to_have_text("disabled")
    page.locator(".invite .toggle").first.click()
    expect(page.locator(".invite .chip").first).to_have_text("active")
    snap(page, "admin-console.png")

    guest_context = browser.new_context(**PHONE)
    guest = guest_context.new_page()
    guest.goto(link)
    expect(guest.locator("#title")).to_have_text("<b>Anna's</b> wedding")  # the title, never the label
    assert "Anna (private)" not in guest.content()
    expect(guest.locator("#unlock")).to_be_visible()
    # before the password: the title and the question, not the album nor "who is sending?"
    assert "Wedding" not in guest.locator("#details").inner_text() and guest.locator("#who").is_hidden()
    guest.fill("#password", "open sesame")
    guest.click("#unlock button")
    expect(guest.locator("#drop")).to_be_visible()
    expect(guest.locator("#details")).to_contain_text("Album: Wedding")
    expect(guest.locator("#who")).to_be_visible()
    hostile = tmp_path / "<img src=x onerror=document.title='x'>.jpg"
    shutil.copyfile(MEDIA / "exif_offset.jpg", hostile)
    guest.set_input_files("#picker", [str(hostile)])
    expect(guest.locator(".item[data-kind=done]")).to_have_count(1, timeout=30000)

    other = browser.new_context(**PHONE)
    used = other.new_page()
    response = used.goto(link)
    assert response.status == 410
    expect(used.locator("h1")).to_have_text("This link has already been used.")  # one-time: the short word (guest walk)

    page.reload()
    card = page.locator(".invite").first
    # the guest who took it may still send: "used up" read as finished (owner walk)
    expect(card.locator(".chip")).to_have_text("no new guests")
    card.locator(".log").click()
    expect(card.locator(".log-box tbody tr")).to_have_count(1)
    expect(card.locator(".log-box tbody td").first).to_have_text(hostile.name)  # text, never markup
    assert page.title() == "Immich Drop · Admin" and card.locator(".log-box img").count() == 0
    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible()
    assert problems == [] and fake.upload_bodies == 1
    for context in (admin, guest_context, other):
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_guest_page_looks_right(make_drop, admin_of, browser, scheme, device, tmp_path):
    """Renders the guest page with some history on it (screenshots for docs/ when asked)."""
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = admin_of(drop)
    token = admin.invite(title="Anna & Tom's wedding", album={"name": "Wedding"}, maxFiles=200,
                         maxFileSize=4_000_000_000, expiresInDays=7)["link"].rsplit("/", 1)[-1]
    size = PHONE if device == "phone" else {"viewport": {"width": 1200, "height": 900}}
    context = browser.new_context(color_scheme=scheme, **size)
    page = context.new_page()
    page.goto(f"{drop.url}/i/{token}")
    page.set_input_files("#picker", [str(MEDIA / n) for n in ("exif_offset.jpg", "creation_time.mp4", "no_date.jpg")])
    playwright.expect(page.locator(".item[data-kind=done]")).to_have_count(3, timeout=30000)
    copy = tmp_path / "exif_offset (1).jpg"  # a copy under another name: a row of its own, "already there"
    shutil.copyfile(MEDIA / "exif_offset.jpg", copy)
    page.set_input_files("#picker", [str(copy)])
    playwright.expect(page.locator(".item[data-kind=duplicate]")).to_have_count(1, timeout=30000)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(18, 18, 22)" if scheme == "dark" else "rgb(247, 247, 249)")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= size["viewport"]["width"]  # nothing sticks out sideways on a phone
    snap(page, f"guest-{device}-{scheme}.png")
    context.close()
