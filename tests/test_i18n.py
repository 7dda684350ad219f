"""The translation catalogs (web/i18n/*.json) and the server's use of them (src/immich_drop/i18n.py)."""

import json
import re
from pathlib import Path

import httpx
import pytest

from conftest import invite_token
from immich_drop import i18n

WEB = Path(__file__).resolve().parents[1] / "web"
SRC = Path(__file__).resolve().parents[1] / "src" / "immich_drop"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalog(lang: str) -> dict:
    return json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != "en"])
def test_every_key_in_every_language_with_the_same_placeholders(lang):
    english, other = catalog("en"), catalog(lang)
    assert sorted(other) == sorted(english)
    for key, text in english.items():
        assert isinstance(other[key], str) and other[key].strip(), key
        assert set(PLACEHOLDER.findall(other[key])) == set(PLACEHOLDER.findall(text)), key
    # translated, not copied: short shared words (Album, {name}) may match, sentences may not
    copied = [k for k, v in english.items() if other[k] == v and len(PLACEHOLDER.sub("", v)) > 12]
    assert copied == []


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_the_summary_counts_a_state_in_the_words_of_its_chip(lang):
    """French rows said "en attente" for queued files while the line above said "à suivre" (and
    "en attente" for files the server holds); German "wartet" against "kommen als Nächstes" (guest walk)."""
    text = catalog(lang)
    for state in ("queued", "paused", "stalled"):
        chip, counted = text[f"guest.state.{state}"], text[f"guest.summary.{state}.one"]
        assert chip.lower() in counted.lower(), (state, chip, counted)


def test_catalogs_are_flat_and_keys_are_namespaced():
    for lang in i18n.LANGUAGES:
        for key, text in catalog(lang).items():
            assert key.split(".")[0] in ("guest", "admin", "server", "common", "notify"), key
            assert isinstance(text, str), key
            assert "<" not in text and ">" not in text, key  # text, never markup


def test_every_code_the_server_sends_has_a_text():
    """A refusal code without a catalog entry would reach the guest as a bare key."""
    english = catalog("en")
    source = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    codes = set(re.findall(r"""code=["'](\w+)["']""", source))
    codes |= set(re.findall(r"""\(\d{3}, "[^"]*", "(\w+)"\)""", source))  # (status, message, code) triples
    codes |= set(re.findall(r"""TargetClosed\(\d{3}, [^)]*?, "(\w+)\"""", source))
    assert {"too_large", "type_not_accepted", "link_used", "limit_reached", "wrong_password"} <= codes
    assert sorted(c for c in codes if f"server.{c}" not in english and f"server.{c}.other" not in english) == []


def test_page_scripts_use_only_known_keys():
    english = catalog("en")
    used = set()
    for name in ("app.js", "index.html"):
        text = (WEB / name).read_text()
        used |= set(re.findall(r"""(?:data-i18n="|aria-label:|I18N\.t\(")((?:guest|common|server)\.[\w.]+)""", text))
        plural = set(re.findall(r"""I18N\.n\("((?:guest|server)\.[\w.]+)\"""", text))
        used |= {f"{key}.other" for key in plural}
    assert used and sorted(k for k in used if k not in english) == []


@pytest.mark.parametrize("header, lang", [
    (None, "en"), ("", "en"), ("de-AT,de;q=0.9,en;q=0.5", "de"), ("ja, fr;q=0.4, de;q=0.8", "de"),
    ("pt-BR", "pt"), ("xx, *;q=0.1", "en"), ("nl;q=0, it", "it"), ("fr;q=abc, es;q=0.2", "es"),
])
def test_language_from_accept_language(header, lang):
    assert i18n.choose(header) == lang


def test_text_fills_placeholders_and_falls_back_to_english():
    assert i18n.text("de", "server.link_used") == "Dieser Link wurde schon von so vielen Browsern benutzt, wie er zulässt."
    assert i18n.text("xx", "server.link_used") == "This link has already been used by as many browsers as it allows."
    assert [i18n.plural("de", "notify.digest.photos", n) for n in (0, 1, 2)] == ["0 Fotos", "1 Foto", "2 Fotos"]
    assert i18n.plural("fr", "notify.digest.photos", 0) == "0 photo"  # French counts 0 as singular, as Intl does
    assert i18n.plural("pt", "notify.digest.photos", 0) == "0 fotos"  # Portugal's Portuguese does not (Brazil's does)
    assert i18n.size_text(60_000_000) == "60 MB" and i18n.size_text(2_500_000_000) == "2.5 GB" and i18n.size_text(999) == "999 bytes"


def test_refusals_carry_a_code_and_sizes_in_plain_words(make_drop, admin_of):
    drop = make_drop(MAX_UPLOAD_SIZE="60000000", PUBLIC_UPLOAD_PAGE_ENABLED="true")
    guest = drop.guest()
    big = guest.create(60_000_001)
    assert big.status_code == 413
    assert big.json() == {"message": "This file is larger than the 60 MB allowed.", "code": "too_large",
                          "params": {"size": 60_000_000}}
    empty = guest.create(0).json()
    assert empty["code"] == "empty" and "Upload-Length" not in empty["message"]
    text = guest.create(10, filename="notes.txt").json()
    assert text["code"] == "type_not_accepted" and text["params"] == {"ext": ".txt"} and "Immich" not in text["message"]
    token = admin_of(drop).invite(maxFileSize=2000)["link"].rsplit("/", 1)[-1]
    guest.http.get(f"/i/{token}")
    limited = guest.create(5000, invite=token).json()
    assert limited == {"message": "Files may be at most 2 KB here.", "code": "file_too_large", "params": {"size": 2000}}
    wrong = guest.http.post(f"/api/i/{token}/unlock", json={"password": "x"})
    assert wrong.status_code == 204  # no password on this link
    unknown = guest.http.get("/api/i/not-a-token").json()
    assert unknown["code"] == "link_invalid"


def test_a_closed_links_page_names_the_link_and_its_tab_says_what_happened(make_drop, admin_of):
    """Guest walk: an expired, turned-off or used link's page said "Immich Drop" in its tab and
    nothing of which link it was. It shows the title its owner wrote for guests (as text), and its
    tab says what happened; a deleted link's page stays an unknown one's, word for word."""
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = admin_of(drop)
    made = admin.invite(title="Anna & Tom's <b>wedding</b>")
    assert admin.call("PATCH", f"/api/invites/{made['id']}", json={"disabled": True}).status_code == 200
    off = httpx.get(drop.url + "/i/" + invite_token(made), headers={"Accept-Language": "de"})
    assert off.status_code == 410
    assert '<p class="link-title muted" dir="auto">Anna &amp; Tom&#x27;s &lt;b&gt;wedding&lt;/b&gt;</p>' in off.text
    assert '<title data-i18n="server.link_off">Dieser Upload-Link wurde' in off.text
    assert admin.call("DELETE", f"/api/invites/{made['id']}").status_code in (200, 204)
    gone = httpx.get(drop.url + "/i/" + invite_token(made))
    unknown = httpx.get(drop.url + "/i/not-a-token")
    assert gone.status_code == unknown.status_code == 404 and gone.text == unknown.text and "wedding" not in gone.text


def test_closed_pages_speak_the_browsers_language(make_drop, admin_of):
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    german = httpx.get(drop.url + "/", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert german.status_code == 404 and german.headers["content-language"] == "de"
    assert '<html lang="de">' in german.text and "Hier gibt es nichts hochzuladen" in german.text
    token = admin_of(drop).invite(maxUses=1)["link"].rsplit("/", 1)[-1]
    french = httpx.get(drop.url + "/i/nope", headers={"Accept-Language": "fr"})
    assert french.status_code == 404 and "Ce lien d&#x27;envoi n&#x27;est pas valide." in french.text
    assert httpx.get(drop.url + f"/i/{token}").status_code == 200
