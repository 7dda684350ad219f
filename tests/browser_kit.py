"""Real-browser plumbing shared by the browser tests: Debian's Chromium under Playwright, headless.

Test modules import the fixtures they use (`from browser_kit import browser, page`). Everything skips,
with the reason, where Playwright or Debian's chromium is missing.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="Debian's chromium is not installed (apt-get install chromium)")
# As the machine's own probe runs it: the closed network refuses Chromium's background connections.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
# An init script: every fetch answer whose JSON the page reads and that carries `X-Test-Answer` (a
# test's own tag, added where it hands the page a held answer) lands in `window.__read`, in order
# (the page's own `.then` on it runs right after, before any next task).
ANSWERS_READ = """window.__read = [];
var json = Response.prototype.json;
Response.prototype.json = function () {
  var tag = this.headers.get("x-test-answer");
  return json.call(this).then(function (data) { if (tag) window.__read.push(tag); return data; });
};"""
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}
SHOTS = Path(os.environ["SCREENSHOTS_DIR"]) if os.environ.get("SCREENSHOTS_DIR") else None


def snap(page, name: str) -> None:
    """Save a screenshot when SCREENSHOTS_DIR is set (`SCREENSHOTS_DIR=docs uv run pytest tests/test_browser.py`)."""
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name), full_page=True)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A phone-sized page that collects script errors in `page.problems`."""
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda err: page.problems.append(str(err)))
    page.on("console", lambda msg: page.problems.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()
