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


def exif_photo(tmp_path, tags: dict[int, bytes]):
    """A JPEG whose APP1 holds a little-endian TIFF block: IFD0 with DateTime (0x0132) if given and
    the Exif pointer, the Exif IFD with the other tags (0x9003 DateTimeOriginal, 0x9011 its offset)."""
    def ifd(entries: dict[int, bytes], start: int, pointer: int | None = None) -> bytes:
        count = len(entries) + (pointer is not None)
        data_at = start + 2 + 12 * count + 4
        head, data = struct.pack("<H", count), b""
        for tag, value in sorted(entries.items()):
            value += b"\0"
            head += struct.pack("<HHII", tag, 2, len(value), data_at + len(data))
            data += value
        if pointer is not None:
            head += struct.pack("<HHII", 0x8769, 4, 1, pointer)
        return head + b"\0" * 4 + data

    ifd0_tags = {t: v for t, v in tags.items() if t == 0x0132}
    exif_tags = {t: v for t, v in tags.items() if t != 0x0132}
    ifd0 = ifd(ifd0_tags, 8, pointer=0)  # sized first, the pointer filled in after
    ifd0 = ifd(ifd0_tags, 8, pointer=8 + len(ifd0))
    tiff = b"II*\0" + struct.pack("<I", 8) + ifd0 + ifd(exif_tags, 8 + len(ifd0))
    app1 = b"Exif\0\0" + tiff
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe1" + struct.pack(">H", 2 + len(app1)) + app1 + b"\xff\xd9")
    return photo


def test_a_zone_that_cannot_be_keeps_the_date_in_the_guests_zone(tmp_path):
    # "+25:00" raised ValueError in timezone(): the whole date went, and the upload time won (date walk)
    for offset in (b"+25:00", b"+00:99"):  # (the second was read as +01:39)
        photo = exif_photo(tmp_path, {0x9003: b"2019:05:04 13:14:15", 0x9011: offset})
        assert iso(capture_date(photo, photo.name, timezone(timedelta(hours=1)))) == "2019-05-04T13:14:15.000+01:00"


@pytest.mark.parametrize("original", [b"0000:00:00 00:00:00", b"2019:13:04 13:14:15", b"    :  :     :  :  ",
                                      b"1970:01:01 00:00:00"])
def test_an_unset_or_impossible_original_date_lets_datetime_speak(tmp_path, original):
    """A camera with no clock writes zeros in DateTimeOriginal: its DateTime was never tried (date walk)."""
    assert iso(capture_date(exif_photo(tmp_path, {0x9003: b"2019:05:04 13:14:15", 0x0132: b"2015:05:05 05:05:05"}),
                            "photo.jpg", timezone.utc)) == "2019-05-04T13:14:15.000Z"  # (the builder's own check)
    photo = exif_photo(tmp_path, {0x9003: original, 0x9011: b"+02:00", 0x0132: b"2015:05:05 05:05:05"})
    # with DateTime's own offset tag (OffsetTime), not DateTimeOriginal's: here none, so the guest's zone
    assert iso(capture_date(photo, photo.name, timezone.utc)) == "2015-05-05T05:05:05.000Z"
    photo = exif_photo(tmp_path, {0x9003: original, 0x9011: b"+02:00", 0x0132: b"2015:05:05 05:05:05",
                                  0x9010: b"-04:00"})
    assert iso(capture_date(photo, photo.name, timezone.utc)) == "2015-05-05T05:05:05.000-04:00"


def test_the_unix_epoch_is_no_date(tmp_path, no_hachoir):
    """Immich reads 1970-01-01 00:00:00 as no date and takes the earliest it is given: sent on, it put
    a guest's video on 1 January 1970, where alone Immich would have used the upload (date walk)."""
    movie = tmp_path / "clip.mp4"
    movie.write_bytes(FTYP + box(b"moov", mvhd(datetime(1970, 1, 1, tzinfo=timezone.utc))))
    assert capture_date(movie, movie.name) is None
    photo = exif_photo(tmp_path, {0x9003: b"1970:01:01 00:00:00"})
    assert capture_date(photo, photo.name) is None


def test_hachoir_dates_the_unix_epoch_none_and_an_avi_in_the_guests_zone():
    berlin = timezone(timedelta(hours=1))
    # ffmpeg's WMV without a date holds the epoch (exiftool: "0000:00:00 00:00:00")
    assert capture_date(MEDIA / "epoch.wmv", "clip.wmv", berlin) is None
    # an AVI's date is its camera's clock: local time, as EXIF's (it was read as UTC)
    assert iso(capture_date(MEDIA / "local_date.avi", "clip.avi", berlin)) == "2014-03-03T03:03:03.000+01:00"


def exif_jpeg(tiff: bytes) -> bytes:
    return b"\xff\xd8\xff\xe1\xff\xfeExif\x00\x00" + tiff


def test_exif_pointer_maze_reads_two_directories_only(tmp_path, monkeypatch):
    """A 512 KiB photo whose every EXIF entry points to another Exif directory (each entry's tail is the
    next directory's count) was followed pointer by pointer: 22 CPU s in a delivery thread per photo. Now
    IFD0 and one Exif IFD are read, however the pointers are laid out; counted, not timed."""
    size = media.EXIF_SCAN_BYTES - 12
    tiff = bytearray(size)
    tiff[:8] = b"MM\x00*" + struct.pack(">I", 8)
    struct.pack_into(">H", tiff, 8, 512)
    for i in range((size - 10) // 12):
        entry = 10 + 12 * i
        struct.pack_into(">HHII", tiff, entry, 0x8769, 4, 1, entry + 10)
    photo = tmp_path / "maze.jpg"
    photo.write_bytes(exif_jpeg(bytes(tiff)))

    reads = 0

    class Counting:
        def __getattr__(self, name):
            return getattr(struct, name)

        def unpack_from(self, *args):
            nonlocal reads
            reads += 1
            if reads > 2 * 2 * 512 + 4:  # two directories, two reads an entry at most
                raise AssertionError(f"more than {reads - 1} EXIF reads for one photo")
            return struct.unpack_from(*args)

    monkeypatch.setattr(media, "struct", Counting())
    assert capture_date(photo, "maze.jpg") is None


def test_exif_date_in_the_exif_directory_and_a_self_pointer(tmp_path):
    """An IFD0 whose Exif pointer points back at itself ends the walk (no date, no loop); a real Exif IFD
    after IFD0 gives its DateTimeOriginal."""
    date = b"2022:03:04 05:06:07\x00"
    ifd0 = struct.pack(">H", 1) + struct.pack(">HHII", 0x8769, 4, 1, 8) + bytes(4)
    tiff = b"MM\x00*" + struct.pack(">I", 8) + ifd0
    photo = tmp_path / "loop.jpg"
    photo.write_bytes(exif_jpeg(tiff))
    assert capture_date(photo, "loop.jpg") is None
    exif_at = 8 + 2 + 12 + 4
    ifd0 = struct.pack(">H", 1) + struct.pack(">HHII", 0x8769, 4, 1, exif_at) + bytes(4)
    exif = struct.pack(">H", 1) + struct.pack(">HHII", 0x9003, 2, len(date), exif_at + 18) + bytes(4) + date
    photo.write_bytes(exif_jpeg(b"MM\x00*" + struct.pack(">I", 8) + ifd0 + exif))
    assert iso(capture_date(photo, "loop.jpg", timezone.utc)) == "2022-03-04T05:06:07.000Z"
