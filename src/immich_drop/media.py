"""What the server learns from a file's own bytes: its SHA-1 and when it was captured.

Both functions are blocking on purpose (disk reads, parsing); callers run them in a thread.

Capture date, best source first:
1. EXIF `DateTimeOriginal` with `OffsetTimeOriginal` (JPEG, HEIC/HEIF, TIFF and TIFF-based RAW),
   found by a small TIFF-IFD reader because hachoir reports neither the offset tag nor HEIC items;
2. for MP4/MOV/3GP/M4V (ISO base media files, what phones record): Apple's
   `com.apple.quicktime.creationdate` (local time with its offset), else the `mvhd` creation time
   (UTC by spec), found by a small box reader that seeks past `mdat`, wherever `moov` sits;
3. for other videos (MKV, AVI, WMV, ...), what hachoir's metadata extraction reports;
4. the caller's fallback (the browser's `lastModified`, then the receive time).
An EXIF time without an offset is read in the guest's timezone when the page sent it, else UTC.
Immich v3 rejects times without a timezone, so every result carries one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path

HASH_PIECE = 1024 * 1024
EXIF_SCAN_BYTES = 512 * 1024  # where the EXIF block of JPEG and HEIC files sits in practice
IFD_ENTRIES = 512  # entries read per EXIF directory: a camera writes a few dozen
# Immich v3.1.0's video types (GET /server/media-types), and .3g2: a link for videos only takes them all
VIDEO_EXTENSIONS = {".3g2", ".3gp", ".3gpp", ".avi", ".flv", ".insv", ".m2t", ".m2ts", ".m4v", ".mkv", ".mov", ".mp4",
                    ".mpe", ".mpeg", ".mpg", ".mts", ".mxf", ".ts", ".vob", ".webm", ".wmv"}

log = logging.getLogger(__name__)


# What the first bytes of a file named as a photo or a video may not be. Immich v3.1.0 checks only
# the extension, so a text file named notes.jpg became an "image" asset with no thumbnail. A file
# whose first bytes are a known photo or video format passes whatever its extension (a WebP saved
# as .jpg is a real image, and Immich reads it from its content), and so does any other binary
# start (formats not listed here, and the test files of people who check uploads with random
# bytes): only a start that is plainly something else is refused: text (HTML, notes, JSON), or a
# document, archive or program format. Every extension Immich takes is checked (a probe sent text
# as .nef, .mts and .wmv when only 22 were): the starts below include those of the formats whose
# first bytes are mostly letters (Fujifilm's RAF: "FUJIFILMCCD-RAW ") or could be taken for them
# (an MPEG transport stream, .mts, starts with 0x47 and binary: it needs no entry).
SIGNATURE_BYTES = 16
_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot", b"uuid", b"junk", b"pict"}
_MEDIA_STARTS = (
    lambda head: head.startswith(b"\xff\xd8\xff"),  # JPEG
    lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"),
    lambda head: head[:6] in (b"GIF87a", b"GIF89a"),
    lambda head: head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"AVI "),
    lambda head: head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),  # TIFF, DNG, BigTIFF
    lambda head: head[4:8] in _ISO_BOXES,  # MP4, MOV, M4V, 3GP, HEIC, AVIF
    lambda head: head.startswith(b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    lambda head: head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00",  # BMP (its reserved zeros)
    lambda head: head.startswith(_OTHER_STARTS),
)
_OTHER_STARTS = (
    b"\xff\x0a", b"\x00\x00\x00\x0cJXL ",  # JPEG XL, bare and in its box
    b"FUJIFILMCCD-RAW", b"IIRO", b"IIRS", b"MMOR", b"IIU\x00",  # Fujifilm, Olympus, Panasonic / Leica RAW
    b"II\x1a\x00\x00\x00HEAPCCDR", b"\x00MRM", b"FOVb", b"ARRI\x12\x34\x56\x78",  # Canon CRW, Minolta, Sigma, ARRI
    b"8BPS\x00", b"\x80\x2a\x5f\xd7", b"\xd7\x5f\x2a\x80",  # Photoshop, Cineon
    b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3",  # MPEG program stream (.mpg, .vob), MPEG video
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", b"FLV\x01",  # ASF (.wmv), Flash video
)
_NOT_MEDIA = (b"%PDF", b"PK\x03\x04", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe",
              b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c", b"\xfd7zXZ\x00", b"\x1f\x8b\x08", b"\x28\xb5\x2f\xfd",
              b"SQLite format 3", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\xef\xbb\xbf", b"ID3", b"OggS", b"fLaC")
# (PDF, ZIP and Office, ELF and Mach-O programs, RAR, 7z, xz, gzip, zstd, SQLite, old Office, UTF-8's
# mark, MP3, Ogg, FLAC; none shorter than 3 bytes, so random bytes, as test files have them, are not
# taken for one but once in 16 million)
_NOT_MEDIA_AT = (
    lambda head: head[:2] == b"MZ" and head[3:4] == b"\x00" and head[5:6] == b"\x00",  # a Windows program
    lambda head: head[:4] == b"RIFF" and head[8:12] == b"WAVE",  # a sound recording
    lambda head: head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY",  # bzip2
    lambda head: head[:2] in (b"\xff\xfe", b"\xfe\xff") and _utf16_text(head[2:]),  # Notepad's "Unicode"
)
_TEXT = frozenset(b"\t\n\r" + bytes(range(0x20, 0x7f)))


def matches_name(head: bytes, filename: str) -> bool:
    """False when a file named as a photo or video (`filename`: one Immich takes) plainly is not one,
    judged from its first bytes (SIGNATURE_BYTES of them, or the whole file if shorter): text, or a
    document, archive or program format. True otherwise."""
    if any(start(head) for start in _MEDIA_STARTS):
        return True
    return not (head.startswith(_NOT_MEDIA) or any(check(head) for check in _NOT_MEDIA_AT) or _is_text(head))


def _is_text(head: bytes) -> bool:
    """Printable ASCII; or UTF-8 prose (the last character may be cut by the 16 bytes) with a space
    or a line break, whose ASCII is letters, digits and a sentence's punctuation: random bytes (a
    test file's) are taken for that about once in ten million, where any printable UTF-8 took one in
    40,000. (Scripts written without spaces, Chinese say, are not recognised: such a file passes.)"""
    if all(byte in _TEXT for byte in head):
        return True
    for cut in range(4):  # a multi-byte character cut at the end
        try:
            text = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        others = [ord(ch) for ch in text if not ch.isascii()]
        return (_WORD.search(text) is not None and any(ch in " \n" for ch in text) and all(
            ch.isalnum() or ch in _PROSE if ch.isascii() else ch.isprintable() for ch in text)
            and max(others) - min(others) < 0x100)  # one script's letters, not characters from all over
    return _latin1_prose(head)


def _latin1_prose(head: bytes) -> bool:
    """Text saved as Latin-1 / Windows-1252 (Windows' "ANSI"): ASCII letters, digits and punctuation
    with at most a fifth of accented letters (À to ÿ), a word and a space."""
    ascii_prose = sum(1 for byte in head if chr(byte).isalnum() and byte < 0x80 or chr(byte) in _PROSE)
    accented = sum(1 for byte in head if byte >= 0xC0 and byte not in (0xD7, 0xF7))
    return (ascii_prose + accented == len(head) and accented * 5 <= len(head) and b" " in head
            and _WORD.search(head.decode("latin-1")) is not None)


_PROSE = " \t\n\r.,;:!?'\"-()"
_WORD = re.compile(r"[^\W\d_]{3}")  # three letters in a row, in any script: a word


def _utf16_text(body: bytes) -> bool:
    """At least three characters of UTF-16 text (after its byte-order mark), printable."""
    for order in ("utf-16-le", "utf-16-be"):
        try:
            text = body[:len(body) - len(body) % 2].decode(order)
        except UnicodeDecodeError:
            continue
        if len(text) >= 3 and all(ch.isprintable() or ch in "\t\n\r" for ch in text) and any(
                ch.isascii() and ch.isalnum() for ch in text):
            return True
    return False


def sha1_file(path: Path) -> str:
    """The hex SHA-1 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        while piece := fh.read(HASH_PIECE):
            digest.update(piece)
    return digest.hexdigest()


def capture_date(path: Path, filename: str, guest_tz: tzinfo | None = None) -> datetime | None:
    """When the photo or video was taken, with a timezone, or None if the file does not say (or says
    a time outside `plausible`)."""
    found = _capture_date(path, filename, guest_tz)
    return found if found is not None and plausible(found) and not _unset(found) else None


def _unset(moment: datetime) -> bool:
    """1970-01-01 00:00:00, the Unix epoch: what a muxer writes when it has no date (ffmpeg's WMV, an
    mvhd of 2082844800). exiftool reads it as no date, and so does Immich, which then takes the
    earliest date it is given: sent on, it put the guest's video on 1 January 1970 (date walk)."""
    return moment.replace(tzinfo=None) == _UNIX_EPOCH


_UNIX_EPOCH = datetime(1970, 1, 1)


def plausible(moment: datetime) -> bool:
    """A capture time Immich can store: 9999-12-31 23:59 at -23:59, or an mvhd of 2**62 seconds, made
    Immich answer 500 (or us raise OverflowError) at every attempt (attack run)."""
    try:
        return EARLIEST <= moment.astimezone(timezone.utc) < LATEST
    except (OverflowError, ValueError):
        return False


EARLIEST, LATEST = datetime(1800, 1, 1, tzinfo=timezone.utc), datetime(2200, 1, 1, tzinfo=timezone.utc)


def _capture_date(path: Path, filename: str, guest_tz: tzinfo | None) -> datetime | None:
    is_video = Path(filename).suffix.lower() in VIDEO_EXTENSIONS
    if not is_video:
        try:
            found = _exif_date(path, guest_tz or timezone.utc)
        except (OSError, ValueError, OverflowError, struct.error) as exc:
            log.debug("no EXIF date in %s: %s", filename, exc)
            found = None
        return found  # hachoir adds nothing for photos but a costly guess at every parser (bench/)
    try:
        return _iso_media_date(path)
    except NotIsoMedia:
        pass
    except (OSError, ValueError, OverflowError, IndexError, struct.error) as exc:  # a broken file: no date, no error
        log.debug("no date in %s: %s", filename, exc)
        return None
    # hachoir loads every parser it has (about 9 MB resident, bench/): only for the rarer containers
    # Matroska's, ASF's and QuickTime's times are UTC by definition; AVI's (a camera's clock, written
    # as text) are local time, like EXIF's (read as UTC, a Berlin AVI was an hour late: date walk)
    return _hachoir_date(path, guest_tz or timezone.utc, utc=Path(filename).suffix.lower() != ".avi")


# --- EXIF -----------------------------------------------------------------------------
_TIFF_HEADERS = (b"II*\x00", b"MM\x00*")
_EXIF_DATE = re.compile(rb"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def _exif_date(path: Path, fallback_tz: tzinfo) -> datetime | None:
    with open(path, "rb") as fh:
        head = fh.read(EXIF_SCAN_BYTES)
    if head[:4] in _TIFF_HEADERS:  # TIFF, DNG and most RAW formats are TIFF files
        tiff = head
    else:  # JPEG APP1 and HEIC Exif items both hold "Exif\0\0" then a TIFF header
        at = head.find(b"Exif\x00\x00")
        while at != -1 and head[at + 6:at + 10] not in _TIFF_HEADERS:
            at = head.find(b"Exif\x00\x00", at + 1)
        if at == -1:
            return None
        tiff = head[at + 6:]
    tags = _read_ifds(tiff)
    # DateTimeOriginal (its offset in OffsetTimeOriginal, else OffsetTime), else DateTime (OffsetTime):
    # a camera with no clock set writes "0000:00:00 00:00:00" in the first and may hold a good second
    # (it hid the second: date walk)
    for tag, offsets in ((0x9003, (0x9011, 0x9010)), (0x0132, (0x9010,))):
        naive = _exif_moment(tags.get(tag))
        if naive is None:
            continue
        offset = next((tags[o] for o in offsets if tags.get(o)), b"").decode("ascii", "replace").strip("\x00 ")
        om = _OFFSET.match(offset)
        if om and int(om.group(2)) < 24 and int(om.group(3)) < 60:  # "+25:00" is no zone: the guest's then
            minutes = int(om.group(2)) * 60 + int(om.group(3))
            return naive.replace(tzinfo=timezone(timedelta(minutes=minutes if om.group(1) == "+" else -minutes)))
        return naive.replace(tzinfo=fallback_tz)
    return None


def _exif_moment(raw: bytes | None) -> datetime | None:
    """An EXIF date ("2019:05:04 13:14:15"), or None for an empty, unset or impossible one (month 13)."""
    match = _EXIF_DATE.match(raw or b"")
    if not match:
        return None
    parts = [int(p) for p in match.groups()]
    if parts[0] < 1900:
        return None
    try:
        moment = datetime(*parts)  # type: ignore[arg-type]
    except ValueError:
        return None
    return None if _unset(moment) else moment  # a clock never set: the other tag may hold a date


def _read_ifds(tiff: bytes) -> dict[int, bytes]:
    """ASCII tags of IFD0 and the Exif sub-IFD of a TIFF block, by tag number.

    Exactly those two directories are read, at most IFD_ENTRIES entries each: the dates live there. A
    crafted block whose entries all point to further Exif IFDs was followed pointer by pointer for 22 CPU
    seconds per 512 KiB photo, holding a delivery thread while other guests' photos waited (probe)."""
    endian = "<" if tiff[:2] == b"II" else ">"
    (at,) = struct.unpack_from(endian + "I", tiff, 4)
    found: dict[int, bytes] = {}
    for _directory in ("IFD0", "Exif"):
        if at + 2 > len(tiff):
            break
        (count,) = struct.unpack_from(endian + "H", tiff, at)
        exif_at = None
        for i in range(min(count, IFD_ENTRIES)):
            entry = at + 2 + i * 12
            if entry + 12 > len(tiff):
                break
            tag, kind, n = struct.unpack_from(endian + "HHI", tiff, entry)
            if tag == 0x8769 and kind in (4, 13) and exif_at is None:  # Exif IFD pointer
                exif_at = struct.unpack_from(endian + "I", tiff, entry + 8)[0]
            elif kind == 2 and tag in (0x0132, 0x9003, 0x9010, 0x9011):  # ASCII
                if n <= 4:
                    value = tiff[entry + 8:entry + 8 + n]
                else:
                    (ptr,) = struct.unpack_from(endian + "I", tiff, entry + 8)
                    value = tiff[ptr:ptr + n]
                found[tag] = value.rstrip(b"\x00")
        if exif_at is None or exif_at == at:
            break
        at = exif_at
    return found


# --- ISO base media (MP4, MOV, 3GP, M4V) ---------------------------------------------------
_TOP_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"moof", b"styp", b"pdin"}
_MAC_EPOCH = datetime(1904, 1, 1, tzinfo=timezone.utc)
_APPLE_DATE = b"com.apple.quicktime.creationdate"
MOOV_LIMIT = 64 * 1024 * 1024  # a movie header is kilobytes to a few MB; more means a broken file
# Boxes walked at one level: a phone's file has a handful at its top and some dozens in its moov.
# A file made of millions of 8-byte boxes (it passes the first-bytes check) was walked for 90 s a GiB,
# holding a delivery slot, while every other guest's photo waited (attack run).
MOST_BOXES = 4096


class NotIsoMedia(Exception):
    """The file does not start like an ISO base media file."""


def _iso_media_date(path: Path) -> datetime | None:
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if fh.read(8)[4:8] not in _TOP_BOXES:
            raise NotIsoMedia

        def read(at: int, n: int) -> bytes:
            fh.seek(at)
            return fh.read(n)

        for kind, start, end in _boxes(read, 0, size):
            if kind == b"moov":
                if end - start > MOOV_LIMIT:
                    return None
                moov = read(start, end - start)
                return _apple_date(moov) or _mvhd_date(moov)
    return None


def _boxes(read, start: int, end: int):
    """(type, payload start, payload end) of the boxes between start and end; `read(at, n)` gives bytes,
    so a file's top level is walked by seeking over payloads (a 4 GB mdat costs one seek). At most
    MOST_BOXES of them: a file with more is not what a camera writes, and has no date read here."""
    at, walked = start, 0
    while at + 8 <= end and walked < MOST_BOXES:
        walked += 1
        head = read(at, 16)
        length, kind = struct.unpack_from(">I4s", head)
        header = 8
        if length == 1:  # a 64-bit size follows (big mdat)
            (length,) = struct.unpack_from(">Q", head, 8)
            header = 16
        elif length == 0:  # to the end
            length = end - at
        if length < header:
            return
        yield kind, at + header, min(at + length, end)
        at += length


def _in(buf: bytes):
    return lambda at, n: buf[at:at + n]


def _child(buf: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in _boxes(_in(buf), start, end) if k == kind), None)


def _mvhd_date(moov: bytes) -> datetime | None:
    found = _child(moov, 0, len(moov), b"mvhd")
    if found is None:
        return None
    at = found[0]
    seconds = struct.unpack_from(">Q", moov, at + 4)[0] if moov[at] == 1 else struct.unpack_from(">I", moov, at + 4)[0]
    return _MAC_EPOCH + timedelta(seconds=seconds) if seconds else None  # 0: the camera did not set it


def _apple_date(moov: bytes) -> datetime | None:
    """moov/meta/keys names the entries of moov/meta/ilst by 1-based index; ilst/<index>/data holds the text."""
    meta = _child(moov, 0, len(moov), b"meta")
    if meta is None:
        return None
    start, end = meta
    if moov[start + 4:start + 8] not in (b"hdlr", b"keys", b"ilst"):
        start += 4  # the ISO form of meta has version and flags first
    keys, items = _child(moov, start, end, b"keys"), _child(moov, start, end, b"ilst")
    if keys is None or items is None:
        return None
    index, at = None, keys[0] + 8  # version/flags, entry count
    for number in range(1, struct.unpack_from(">I", moov, keys[0] + 4)[0] + 1):
        length = struct.unpack_from(">I", moov, at)[0]
        if length < 8 or at + length > keys[1]:
            return None
        if moov[at + 8:at + length] == _APPLE_DATE:
            index = number
            break
        at += length
    if index is None:
        return None
    for kind, s, e in _boxes(_in(moov), *items):
        data = _child(moov, s, e, b"data") if int.from_bytes(kind, "big") == index else None
        if data:
            text = moov[data[0] + 8:data[1]].decode("utf-8", "replace").strip("\x00 ")
            try:
                found = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            return found if found.tzinfo else None
    return None


# --- hachoir ----------------------------------------------------------------------------
def _hachoir_date(path: Path, fallback_tz: tzinfo, utc: bool) -> datetime | None:
    from hachoir.core import config as hachoir_config
    from hachoir.metadata import extractMetadata
    from hachoir.parser import createParser

    hachoir_config.quiet = True  # its warnings go to stdout, not to logging
    try:
        parser = createParser(str(path))
        if parser is None:
            return None
        with parser:
            metadata = extractMetadata(parser)
    except Exception as exc:  # hachoir raises many kinds on odd files; a date is optional
        log.debug("hachoir could not read %s: %s", path.name, exc)
        return None
    if metadata is None:
        return None
    for key in ("date_time_original", "creation_date"):
        value = metadata.get(key, None) if metadata.has(key) else None
        if isinstance(value, datetime) and value.year > 1904 and not _unset(value):
            if value.tzinfo is not None:
                return value
            return value.replace(tzinfo=timezone.utc if utc else fallback_tz)
    return None


def iso(moment: datetime) -> str:
    """ISO-8601 with an explicit offset (`Z` for UTC), as Immich v3 requires."""
    text = moment.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def fixed_iso(moment: datetime) -> str:
    """ISO-8601 with milliseconds and a `±hh:mm` offset, always 29 characters (dates sent after a
    relayed file: the request's length is known before them). Offsets are rounded to the minute."""
    offset = moment.utcoffset() or timedelta(0)
    minutes = round(offset.total_seconds() / 60)
    moment = moment.astimezone(timezone(timedelta(minutes=minutes)))
    text = moment.isoformat(timespec="milliseconds")
    return text if len(text) == 29 else text + "+00:00"


def from_ms(ms: int | None) -> datetime | None:
    """A browser's `lastModified` (ms since the epoch) as a UTC time; None if absent or absurd."""
    if not ms:
        return None
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return moment if plausible(moment) else None
