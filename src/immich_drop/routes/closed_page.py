"""The plain pages a guest sees when there is nothing to upload: closed, used or unknown links, and
the public page when it is off. Written in the language of the request's Accept-Language."""

from __future__ import annotations

import html

from .. import i18n


def message_page(lang: str, code: str, detail: str = "page.new_link", refresh: int | None = None,
                 link_title: str = "") -> str:
    """A closed page in `lang` (from Accept-Language); i18n.js switches it to a language the guest
    picked earlier on the upload page. Catalog text is escaped like any other text. `refresh`
    (seconds): the page loads itself again, for a link its owner may turn on again. `link_title`:
    the title its owner wrote for the link's guests, so they know which link this is (a tab or a
    page that said only "Immich Drop" and "This link has expired" did not: guest walk)."""
    title, line = f"server.{code}", f"server.{detail}"
    heading = html.escape(i18n.text(lang, title))
    again = f"<meta http-equiv=\"refresh\" content=\"{int(refresh)}\">" if refresh else ""
    named = f"<p class=\"link-title muted\" dir=\"auto\">{html.escape(link_title)}</p>" if link_title.strip() else ""
    return (f"<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">{again}<meta name=\"viewport\" "
            f"content=\"width=device-width, initial-scale=1\"><title data-i18n=\"{title}\">{heading}</title>"
            "<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">"
            "<link rel=\"stylesheet\" href=\"/static/style.css\"><script src=\"/static/theme.js\"></script>"
            "<script src=\"/static/i18n.js\" defer></script></head>"
            f"<body><main class=\"closed\">{named}<h1 data-i18n=\"{title}\">{heading}</h1>"
            f"<p class=\"muted\" data-i18n=\"{line}\">{html.escape(i18n.text(lang, line))}</p>"
            "</main></body></html>")
