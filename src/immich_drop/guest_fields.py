"""The guest's name and message: optional by default; per link the owner may make the name required
or hide both (`Invite.guest_fields`: "optional" | "required" | "hidden").

They travel in the tus metadata (`guestName`, `guestMessage`), are kept on the upload (the owner's
log shows them) and go to Immich as the asset's description: "From Anna: see you soon".
"""

from __future__ import annotations

import unicodedata

MODES = ("optional", "required", "hidden")
NAME_MAX, MESSAGE_MAX = 100, 1000


class GuestFieldsRefused(ValueError):
    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message, self.code = message, code


# Format characters that belong to the text: the zero-width joiner and non-joiner (emoji sequences
# such as 👩‍🦰, Persian and Indic spelling). Other control and format characters (bidi overrides
# among them) become spaces.
JOINERS = "\u200c\u200d"


def _as_spaces(text: str, keep: str, categories: tuple[str, ...] = ()) -> str:
    """`text` in NFC, each control or format character (or one in `categories`) not in `keep` a space."""
    return "".join(" " if ch not in keep and ((c := unicodedata.category(ch))[0] == "C" or c in categories) else ch
                   for ch in unicodedata.normalize("NFC", text))


def _clean(text, limit: int) -> str:
    # only text is a name or message: a JSON list was kept as "['a']" (attack run)
    text = _as_spaces(text if isinstance(text, str) else "", JOINERS + "\n").strip()
    if not text.strip(JOINERS + " \n"):  # joiners alone join nothing: an invisible "name" is none
        return ""
    if len(text) > limit:
        raise GuestFieldsRefused("The name or message is too long.", "text_too_long")
    return text


def one_line(text: str) -> str:
    """An owner's title, label or album name as stored and sent: NFC, control and format characters
    (line breaks, NUL, bidi overrides; not the joiners) as spaces, trimmed. A NUL made Immich refuse
    an album name (told as "Immich cannot be reached"), a line break made the QR card fail (attack run)."""
    return _as_spaces(text, JOINERS, ("Zl", "Zp")).strip()


def clean_guest_fields(name, message, mode: str) -> tuple[str, str]:
    """(name, message) as stored: control characters out, trimmed; ("", "") where the link hides them.
    Raises GuestFieldsRefused for a missing required name or text over the limits."""
    if mode == "hidden":
        return "", ""
    name, message = _clean(name, NAME_MAX).replace("\n", " "), _clean(message, MESSAGE_MAX)
    if mode == "required" and not name:
        raise GuestFieldsRefused("Please enter your name.", "name_required")
    return name, message


def description(name: str, message: str) -> str:
    """The asset description Immich gets: "From Anna: message", "From Anna", the message alone, or ""."""
    if name and message:
        return f"From {name}: {message}"
    if name:
        return f"From {name}"
    return message
