"""The printable QR card: `card(link, title, note)` → PNG bytes (the code, the guest-facing title under
it, a note such as "asks for a password", then the link), black on white, for an owner to print and put on a table.

Pillow's own font knows ASCII only: "Fête de Noël" printed as "F▯te de No▯l". The title is drawn
with the machine's fonts instead (DejaVu, Noto, Liberation, Droid's CJK fallback, Arial...), each
character in the first that has it; a character none has is written without its accent ("é" as
"e") or left out, never drawn as a box. With no such font at all, Pillow's is used the same way.
The Containerfile installs DejaVu. Long titles wrap to four lines (a word wider than the card
between its characters), the last ending in "…" if cut;
the link shrinks to fit the width. Pure CPU and file reads: call it from a thread.
"""

from __future__ import annotations

import functools
import io
import unicodedata
from pathlib import Path

FONT_FOLDERS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts", "/System/Library/Fonts",
                "C:/Windows/Fonts")
FONT_FILES = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf", "Arial.ttf", "arial.ttf",
              "DroidSansFallbackFull.ttf", "NotoSansCJK-Regular.ttc", "Arial Unicode.ttf")
TITLE_SIZE, TITLE_LINE, MOST_LINES = 40, 52, 4
NOTE_SIZE, NOTE_LINE = 28, 38
PLAIN = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "..."}


def card(link: str, title: str, note: str = "") -> bytes:
    """`note`: a line under the title in smaller type (a link with a password says one is asked)."""
    import qrcode
    from PIL import Image, ImageDraw

    code = qrcode.make(link, box_size=16, border=4).get_image().convert("RGB")
    width = code.width
    title_fonts = fonts(TITLE_SIZE)
    lines = wrap(runs(title.strip(), title_fonts), width - 64) if title.strip() else []
    notes = wrap(runs(note.strip(), fonts(NOTE_SIZE)), width - 64)[:MOST_LINES] if note.strip() else []
    size = 28
    while size > 10 and _width(runs(link, fonts(size))) > width - 32:
        size -= 2
    link_line = runs(link, fonts(size))
    gap = 12 if notes else 0  # between the note and the link, which read as one block
    height = code.height + TITLE_LINE * len(lines) + NOTE_LINE * len(notes) + gap + size + 48
    out = Image.new("RGB", (width, height), "white")
    out.paste(code, (0, 0))
    pen = ImageDraw.Draw(out)
    y = code.height - 8 + TITLE_SIZE  # baselines: runs in different fonts stand on one line
    for line in lines:
        _draw(pen, line, width, y)
        y += TITLE_LINE
    for line in notes:
        _draw(pen, line, width, y - TITLE_SIZE + NOTE_SIZE)
        y += NOTE_LINE
    _draw(pen, link_line, width, y - TITLE_SIZE + 8 + gap + size)
    data = io.BytesIO()
    out.save(data, format="PNG")
    return data.getvalue()


Run = tuple[str, object]  # (text, the font it is drawn in)


def runs(text: str, font_list: list) -> list[Run]:
    """`text` as runs of characters in one font each: the first font that has a character draws it;
    one none has is written plainer (without its accent, "–" as "-") or left out."""
    out: list[Run] = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            char = " "  # a line break made Pillow's layout fail: 500 (attack run); one line, as stored now
        for candidate in (char, *_plainer(char)):
            font = next((f for f in font_list if candidate.isspace() or has_glyph(f, candidate)), None)
            if font is not None:
                break
        else:
            continue
        if out and out[-1][1] is font:
            out[-1] = (out[-1][0] + candidate, font)
        else:
            out.append((candidate, font))
    return out


def wrap(line: list[Run], width: int) -> list[list[Run]]:
    """Runs broken into lines no wider than `width` at spaces (a word wider than a line between its
    characters); at most four, the last with "…" if cut."""
    words: list[list[Run]] = [[]]
    for text, font in line:
        for i, part in enumerate(text.split(" ")):
            if i:
                words.append([])
            if part:
                words[-1].append((part, font))
    lines: list[list[Run]] = []
    for word in (piece for w in words if w for piece in _pieces(w, width)):
        if lines and _width(lines[-1] + [(" ", word[0][1])] + word) <= width:
            lines[-1] += [(" ", word[0][1])] + word
        else:
            lines.append(list(word))
    if len(lines) > MOST_LINES:
        last = lines[MOST_LINES - 1]
        while last[-1][0] in ("", " ") or _width(last + [("…", last[-1][1])]) > width:
            if len(last) > 1:
                last.pop()  # whole words, and the space before them
            elif last[0][0]:
                last[0] = (last[0][0][:-1], last[0][1])  # one word filled the line: characters
            else:
                break  # not even "…" fits: a card this narrow is never drawn
        lines = lines[:MOST_LINES - 1] + [last + [("…", last[-1][1])]]
    return lines


def _pieces(word: list[Run], width: int) -> list[list[Run]]:
    """`word`, or where it is wider than `width` (a title with no spaces), its characters in pieces
    that fit: they ran off both edges of the printed card (owner walk)."""
    if _width(word) <= width:
        return [word]
    pieces: list[list[Run]] = [[]]
    for text, font in word:
        for char in text:
            if pieces[-1] and _width(pieces[-1] + [(char, font)]) > width:
                pieces.append([])
            piece = pieces[-1]
            if piece and piece[-1][1] is font:
                piece[-1] = (piece[-1][0] + char, font)
            else:
                piece.append((char, font))
    return pieces


@functools.cache
def fonts(size: int) -> list:
    """The machine's fonts found from FONT_FILES at `size`, then Pillow's own (ASCII)."""
    from PIL import ImageFont

    return [ImageFont.truetype(path, size) for path in font_paths()] + [ImageFont.load_default(size=size)]


@functools.cache
def font_paths() -> tuple[str, ...]:
    found = []
    for name in FONT_FILES:
        for folder in (Path(f) for f in FONT_FOLDERS):
            path = next(folder.rglob(name), None) if folder.is_dir() else None
            if path is not None:
                found.append(str(path))
                break
    return tuple(found)


def has_glyph(font, char: str) -> bool:
    """Does `font` draw `char` (and not its "missing" box)?"""
    return _mask(font, char) != _missing(font)


@functools.lru_cache(maxsize=4096)
def _mask(font, char: str) -> tuple:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


@functools.cache
def _missing(font) -> tuple:
    return _mask(font, "\U0010fffd")  # a private-use character no font draws


def _plainer(char: str) -> list[str]:
    if char in PLAIN:
        return [PLAIN[char]]
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return [base] if base and base != char else []


def _width(line: list[Run]) -> float:
    return sum(font.getlength(text) for text, font in line)


def _draw(pen, line: list[Run], width: int, baseline: float) -> None:
    x = (width - _width(line)) / 2
    for text, font in line:
        pen.text((x, baseline), text, font=font, fill="black", anchor="ls")
        x += font.getlength(text)
