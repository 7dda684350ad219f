"""Capture dates and hashes from the files' own bytes."""

import struct
from datetime import datetime, timedelta, timezone

import pytest

from conftest import MEDIA, make_file
from immich_drop import media
from immich_drop.media import capture_date, iso, sha1_file


def box(kind: bytes, payload: bytes, large: bool = False) -> bytes:
    if large:  # the 64-bit size form, as cameras write a big mdat
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mvhd(when: datetime, version: int = 0) -> bytes:
    seconds = int((when - datetime(1904, 1, 1, tzinfo=timezone.utc)).total_seconds())
    times = struct.pack(">QQIQ", seconds, seconds, 600, 0) if version == 1 else struct.pack(">IIII", seconds, seconds, 600, 0)
    return box(b"mvhd", bytes([version, 0, 0, 0]) + times + bytes(80))


def apple_meta(entries: dict[str, str]) -> bytes:
    """QuickTime's moov/meta: hdlr 'mdta', keys naming the items, ilst holding them by 1-based index."""
    names = [struct.pack(">I", 8 + len(k)) + b"mdta" + k.encode() for k in entries]
    keys = box(b"keys", struct.pack(">II", 0, len(names)) + b"".join(names))
    items = b"".join(box(struct.pack(">I", i), box(b"data", struct.pack(">II", 1, 0) + v.encode()))
                     for i, v in enumerate(entries.values(), start=1))
    return box(b"meta", box(b"hdlr", bytes(8) + b"mdta" + bytes(12)) + keys + box(b"ilst", items))


def mkv(when: datetime) -> bytes:
    """A minimal Matroska file (EBML header, Segment/Info/DateUTC): a container only hachoir reads here."""
    def element(ident: bytes, payload: bytes) -> bytes:
        return ident + b"\x01" + len(payload).to_bytes(7, "big") + payload

    nanoseconds = int((when - datetime(2001, 1, 1, tzinfo=timezone.utc)).total_seconds()) * 10**9
    header = element(b"\x1a\x45\xdf\xa3", element(b"\x42\x86", b"\x01") + element(b"\x42\xf7", b"\x01")
                     + element(b"\x42\xf2", b"\x04") + element(b"\x42\xf3", b"\x08")
                     + element(b"\x42\x82", b"matroska") + element(b"\x42\x87", b"\x04") + element(b"\x42\x85", b"\x02"))
    info = element(b"\x15\x49\xa9\x66", element(b"\x2a\xd7\xb1", (10**6).to_bytes(3, "big"))
                   + element(b"\x44\x61", struct.pack(">q", nanoseconds))
                   + element(b"\x4d\x80", b"t") + element(b"\x57\x41", b"t"))
    return header + element(b"\x18\x53\x80\x67", info)


@pytest.fixture
def no_hachoir(monkeypatch):
    """ISO media files are read without hachoir (it loads every parser it has: ~9 MB resident)."""
    def refuse(*args):
        raise AssertionError("hachoir was asked")

    monkeypatch.setattr(media, "_hachoir_date", refuse)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("exif_offset.jpg", "2019-05-04T13:14:15.000+02:00"),
        ("exif_offset.heic", "2021-12-24T18:30:00.000-05:00"),
        ("exif_no_offset.jpg", "2020-02-29T08:00:00.000-03:00"),  # the guest's zone fills the gap
        ("creation_time.mp4", "2018-07-01T10:20:30.000Z"),  # QuickTime times are UTC
    ],
)
def test_capture_dates(name, expected, no_hachoir):
    found = capture_date(MEDIA / name, name, timezone(timedelta(hours=-3)))
    assert iso(found) == expected


def test_no_date_and_garbage(tmp_path):
    assert capture_date(MEDIA / "no_date.jpg", "no_date.jpg") is None
    junk = make_file(tmp_path / "junk.jpg", 4096)
    assert capture_date(junk, "junk.jpg") is None
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes((MEDIA / "exif_offset.jpg").read_bytes()[:60])  # cut inside the EXIF block
    assert capture_date(truncated, "cut.jpg") is None


def test_exif_without_offset_defaults_to_utc():
    assert iso(capture_date(MEDIA / "exif_no_offset.jpg", "x.jpg")) == "2020-02-29T08:00:00.000Z"


def test_sha1_file(tmp_path):
    import hashlib

    path = make_file(tmp_path / "f.bin", 3 * 1024 * 1024 + 5)
    assert sha1_file(path) == hashlib.sha1(path.read_bytes()).hexdigest()


WHEN = datetime(2023, 8, 12, 17, 45, 10, tzinfo=timezone.utc)
FTYP = box(b"ftyp", b"qt  " + bytes(4) + b"qt  ")


def test_iphone_movie_with_the_header_after_a_large_mdat_gives_apple_local_time(tmp_path, no_hachoir):
    movie = tmp_path / "IMG_0001.MOV"
    meta = apple_meta({"com.apple.quicktime.make": "Apple",
                       "com.apple.quicktime.creationdate": "2023-08-12T19:45:10+0200"})
    movie.write_bytes(FTYP + box(b"wide", b"") + box(b"mdat", bytes(300_000), large=True)
                      + box(b"moov", mvhd(WHEN, version=1) + meta))
    assert iso(capture_date(movie, movie.name)) == "2023-08-12T19:45:10.000+02:00"


def test_movie_header_time_is_utc_when_no_apple_date(tmp_path, no_hachoir):
    movie = tmp_path / "clip.mp4"
    movie.write_bytes(FTYP + box(b"mdat", bytes(1000)) + box(b"moov", apple_meta({"other": "x"}) + mvhd(WHEN)))
    assert iso(capture_date(movie, movie.name, timezone(timedelta(hours=5)))) == "2023-08-12T17:45:10.000Z"


@pytest.mark.parametrize("content", [
    FTYP + box(b"moov", mvhd(datetime(1904, 1, 1, tzinfo=timezone.utc))),  # time not set by the camera
    FTYP + struct.pack(">I4s", 0, b"mdat") + bytes(5000),  # mdat to the end, still recording: no moov yet
    FTYP + struct.pack(">I4s", 4, b"free") + bytes(100),  # a box shorter than its header
    FTYP + box(b"moov", struct.pack(">I4s", 100, b"mvhd")),  # a truncated movie header
    FTYP + box(b"moov", box(b"meta", box(b"hdlr", bytes(20)) + box(b"keys", struct.pack(">II", 0, 9))
                              + box(b"ilst", b""))),  # keys announces entries it does not hold
], ids=["unset", "recording", "short-box", "cut-mvhd", "bad-keys"])
def test_iso_media_without_a_usable_date_gives_none(tmp_path, no_hachoir, content):
    movie = tmp_path / "odd.mp4"
    movie.write_bytes(content)
    assert capture_date(movie, movie.name) is None


def test_a_date_immich_cannot_store_is_no_date(tmp_path, no_hachoir):
    # 9999-12-31 23:59:59 at -23:59 is in year 10000 in UTC: Immich answered 500 at every attempt, and
    # an mvhd of 2**62 seconds raised OverflowError in the delivery (attack run).
    photo = tmp_path / "far.jpg"
    data = (MEDIA / "exif_offset.jpg").read_bytes()
    assert data.count(b"2019:05:04 13:14:15") and data.count(b"+02:00")
    photo.write_bytes(data.replace(b"2019:05:04 13:14:15", b"9999:12:31 23:59:59").replace(b"+02:00", b"-23:59"))
    assert capture_date(photo, photo.name) is None
    photo.write_bytes(data.replace(b"2019:05:04 13:14:15", b"1066:10:14 09:00:00"))
    assert capture_date(photo, photo.name) is None
    movie = tmp_path / "far.mp4"
    huge = box(b"mvhd", bytes([1, 0, 0, 0]) + struct.pack(">QQIQ", 2**62, 2**62, 600, 0) + bytes(80))
    movie.write_bytes(FTYP + box(b"moov", huge))
    assert capture_date(movie, movie.name) is None
    assert media.from_ms(253402300799999 + 86400000) is None and media.from_ms(-10**13) is None
    assert iso(media.from_ms(1_700_000_000_000)) == "2023-11-14T22:13:20.000Z"


def test_a_file_of_countless_tiny_boxes_is_walked_only_so_far(tmp_path, no_hachoir):
    """Six 200 MiB ".mp4" files of 8-byte free boxes held the delivery slots for minutes (attack run):
    the walk stops after MOST_BOXES boxes at one level, where a camera's file has a handful."""
    when = datetime(2021, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    reads = []
    bomb = tmp_path / "bomb.mp4"
    bomb.write_bytes(FTYP + struct.pack(">I4s", 8, b"free") * 200_000 + box(b"moov", mvhd(when)))
    with open(bomb, "rb") as fh:
        def read(at, n):
            reads.append(at)
            fh.seek(at)
            return fh.read(n)
        walked = list(media._boxes(read, 0, bomb.stat().st_size))
    assert len(walked) == len(reads) == media.MOST_BOXES
    assert capture_date(bomb, bomb.name) is None  # its moov lies beyond: no date rather than minutes
    usual = tmp_path / "usual.mp4"  # a real layout: a few boxes, then the moov
    usual.write_bytes(FTYP + struct.pack(">I4s", 8, b"free") * 20 + box(b"mdat", bytes(1000)) + box(b"moov", mvhd(when)))
    assert iso(capture_date(usual, usual.name)) == "2021-05-06T07:08:09.000Z"


def test_other_video_containers_go_to_hachoir(tmp_path):
    movie = tmp_path / "holiday.mkv"
    movie.write_bytes(mkv(datetime(2022, 3, 4, 5, 6, 7, tzinfo=timezone.utc)))
    assert iso(capture_date(movie, movie.name)) == "2022-03-04T05:06:07.000Z"
