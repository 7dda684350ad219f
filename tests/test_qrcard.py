"""The printable QR card's text: every character drawn in a font that has it, never as a box."""

import io

import pytest
from PIL import Image, ImageFont

from immich_drop import qrcard

TITLE = "Fête de Noël chez Hélène – 新年快乐 🎉"


def text_of(runs) -> str:
    return "".join(text for text, _ in runs)


def test_with_pillows_font_alone_accents_are_written_plainer_and_the_rest_left_out():
    """Pillow's own font knows ASCII only: "Fête" printed as "F▯te" (owner walk)."""
    default = [ImageFont.load_default(size=40)]
    runs = qrcard.runs(TITLE, default)
    assert text_of(runs).split() == ["Fete", "de", "Noel", "chez", "Helene", "-"]
    assert all(c.isspace() or qrcard.has_glyph(font, c) for text, font in runs for c in text)


@pytest.mark.skipif(not qrcard.font_paths(), reason="no font of qrcard.FONT_FILES on this machine")
def test_the_machines_fonts_draw_the_accents():
    runs = qrcard.runs(TITLE, qrcard.fonts(40))
    assert text_of(runs).startswith("Fête de Noël chez Hélène – ")
    assert all(c.isspace() or qrcard.has_glyph(font, c) for text, font in runs for c in text)
    assert not qrcard.has_glyph(qrcard.fonts(40)[-1], "ê")  # Pillow's own font, last: the box it would draw


def test_a_long_title_wraps_to_four_lines_the_last_ending_in_an_ellipsis():
    title = "Bitte alle Fotos vom Abend und vom Tag danach hier hochladen, auch die verwackelten " * 3
    lines = qrcard.wrap(qrcard.runs(title, qrcard.fonts(40)), 560)
    assert len(lines) == 4
    assert all(qrcard._width(line) <= 560 for line in lines)
    last = text_of(lines[-1])
    assert last.endswith("…") and not last.endswith(" …")
    assert " ".join(text_of(line) for line in lines)[:-1] in title  # whole words, in order


@pytest.mark.parametrize("title", ["W" * 200, "Hochzeitsfotos" * 3 + " von Anna", "Ab " + "Ü" * 60])
def test_a_word_wider_than_the_card_is_broken_between_its_characters(title):
    """A title with no spaces ran off both edges of the printed card (owner walk)."""
    lines = qrcard.wrap(qrcard.runs(title, qrcard.fonts(40)), 560)
    assert 2 <= len(lines) <= 4
    assert all(qrcard._width(line) <= 560 for line in lines)
    drawn = "".join(text_of(line) for line in lines).replace(" ", "")
    whole = title.replace(" ", "")
    assert drawn == whole or (drawn.endswith("…") and whole.startswith(drawn[:-1]))


def test_a_line_too_narrow_for_one_character_ends_the_wrap():
    """Cutting the last line's characters for the "…" emptied it and went on for ever (cold review)."""
    lines = qrcard.wrap(qrcard.runs("W" * 50, qrcard.fonts(40)), 30)
    assert len(lines) == 4


def test_line_breaks_in_a_title_are_drawn_as_spaces():
    """"a\\nb" made Pillow's layout fail (raqm_layout), and the card request a 500 (attack run)."""
    title = "a\nb\rc\x1c\x1d\x1e\x85\u2028\u2029d"
    assert text_of([run for line in qrcard.wrap(qrcard.runs(title, qrcard.fonts(40)), 560) for run in line]) \
        == "a b c d"
    assert qrcard.card("https://drop.example.org/i/abc", title).startswith(b"\x89PNG")


def test_the_card_is_a_png_with_the_title_under_the_code():
    with_title = Image.open(io.BytesIO(qrcard.card("https://drop.example.org/i/abc", TITLE))).convert("L")
    without = Image.open(io.BytesIO(qrcard.card("https://drop.example.org/i/abc", ""))).convert("L")
    assert with_title.width == without.width and with_title.height > without.height
