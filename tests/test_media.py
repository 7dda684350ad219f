"""Capture dates and hashes from the files' own bytes."""

from datetime import timedelta, timezone

import pytest

from conftest import MEDIA, make_file
from immich_drop.media import capture_date, iso, sha1_file


@pytest.mark.parametrize(
    "name, expected",
    [
        ("exif_offset.jpg", "2019-05-04T13:14:15.000+02:00"),
        ("exif_offset.heic", "2021-12-24T18:30:00.000-05:00"),
        ("exif_no_offset.jpg", "2020-02-29T08:00:00.000-03:00"),  # the guest's zone fills the gap
        ("creation_time.mp4", "2018-07-01T10:20:30.000Z"),  # QuickTime times are UTC
    ],
)
def test_capture_dates(name, expected):
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
