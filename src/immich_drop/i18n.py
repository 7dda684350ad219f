"""Translations on the server: the same catalogs as the pages (`web/i18n/<lang>.json`).

`choose(accept_language)` picks the best language we have from an `Accept-Language` header (English
when none fits); `text(lang, key, **params)` gives the text with its {name} placeholders filled, from
English when the language lacks the key; `plural(lang, key, count, **params)` picks `key.one` or
`key.other` for `count` the way the pages' `I18N.n` does (Intl.PluralRules), with {count} filled. `size_text(bytes)` writes a size the way the pages do
(decimal units), `wait_text(seconds)` a wait. The catalogs are read once, at import: small files, and never on the event loop.
"""

from __future__ import annotations

import json
import re

from .resources import web_dir

LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")
DEFAULT = "en"
CATALOGS: dict[str, dict[str, str]] = {
    lang: json.loads((web_dir() / "i18n" / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_ZERO_IS_ONE = ("fr",)  # plural(): CLDR counts 0 as singular here (in Brazil's Portuguese too, not in pt-PT's)


def choose(accept_language: str | None) -> str:
    """The language to answer in: highest q-value first, then header order; `de-AT` counts as `de`."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "")[:500].split(",")):
        tag, _, rest = part.strip().partition(";")
        quality = 1.0
        if rest.strip().startswith("q="):
            try:
                quality = float(rest.strip()[2:])
            except ValueError:
                quality = 0.0
        code = tag.strip().lower().split("-")[0]
        if code in CATALOGS and quality > 0:
            ranked.append((-quality, index, code))
    return min(ranked)[2] if ranked else DEFAULT


def text(lang: str, key: str, **params) -> str:
    catalog = CATALOGS.get(lang, CATALOGS[DEFAULT])
    template = catalog.get(key, CATALOGS[DEFAULT].get(key, key))
    return _PLACEHOLDER.sub(lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0), template)


def plural(lang: str, key: str, count: int, **params) -> str:
    """`plural("de", "notify.digest.photos", 3)` → "3 Fotos". The catalogs hold only "one" and "other":
    "one" is exactly 1, and also 0 in French (CLDR's rule, which Intl.PluralRules follows; the catalog's
    Portuguese is Portugal's, where 0 is "other")."""
    one = count == 1 or (count == 0 and lang in _ZERO_IS_ONE)
    return text(lang, f"{key}.{'one' if one else 'other'}", count=count, **params)


def size_text(size: int) -> str:
    """`60000000` → "60 MB": decimal units, as the pages show them (the English message beside a code)."""
    value, units, i = float(size), ["bytes", "KB", "MB", "GB", "TB"], 0
    while value >= 1000 and i < len(units) - 1:
        value, i = value / 1000, i + 1
    return f"{value:.0f} {units[i]}" if i == 0 or value == int(value) else f"{value:.1f} {units[i]}"


def wait_text(seconds: int) -> str:
    """`900` → "15 minutes", `45` → "45 seconds": a wait as the pages say it (`I18N.formatWait`), rounded
    up so it is never shorter than the real one; in English, for the message beside a code."""
    if seconds >= 90:
        minutes = -(-seconds // 60)
        return f"{minutes} minutes"
    seconds = max(1, seconds)
    return "1 second" if seconds == 1 else f"{seconds} seconds"
