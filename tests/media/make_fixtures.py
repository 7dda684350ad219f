"""Regenerate the small media fixtures in this folder.

Not part of the test run: the files it writes are committed. It needs Pillow and pillow-heif,
which the project itself does not depend on, and ffmpeg for the two videos hachoir reads:

    python -m venv /tmp/fx && /tmp/fx/bin/pip install pillow pillow-heif
    /tmp/fx/bin/python tests/media/make_fixtures.py

What each file holds is what the tests assert, so change both together.
"""

import struct
import subprocess
from pathlib import Path

from PIL import Image
import pillow_heif

HERE = Path(__file__).parent


def exif(date: str, offset: str | None):
    ex = Image.Exif()
    ex[0x010F] = "ImmichDropTest"  # Make
    sub = ex.get_ifd(0x8769)
    sub[0x9003] = date  # DateTimeOriginal
    if offset:
        sub[0x9011] = offset  # OffsetTimeOriginal
    return ex


def image(seed: int) -> Image.Image:
    img = Image.new("RGB", (64, 48))
    img.putdata([((x * seed) % 256, (y * 7) % 256, (x + y + seed) % 256) for y in range(48) for x in range(64)])
    return img


def mp4(creation_unix: int) -> bytes:
    """A minimal ISO BMFF file: ftyp, moov/mvhd with a creation time, and an mdat."""
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    mac = creation_unix + 2082844800  # QuickTime epoch is 1904-01-01 UTC
    mvhd = struct.pack(">B3xIIII", 0, mac, mac, 1000, 2000)  # version, flags, ctime, mtime, scale, duration
    mvhd += struct.pack(">IH10x", 0x00010000, 0x0100)  # rate, volume, reserved
    mvhd += struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)  # matrix
    mvhd += bytes(24) + struct.pack(">I", 2)  # pre_defined, next_track_ID
    return (
        box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
        + box(b"moov", box(b"mvhd", mvhd))
        + box(b"mdat", bytes(range(256)) * 64)
    )


if __name__ == "__main__":
    image(3).save(HERE / "exif_offset.jpg", exif=exif("2019:05:04 13:14:15", "+02:00"), quality=90)
    image(5).save(HERE / "exif_no_offset.jpg", exif=exif("2020:02:29 08:00:00", None), quality=90)
    image(9).save(HERE / "no_date.jpg", quality=90)
    pillow_heif.register_heif_opener()
    image(11).save(HERE / "exif_offset.heic", exif=exif("2021:12:24 18:30:00", "-05:00"), quality=50)
    (HERE / "creation_time.mp4").write_bytes(mp4(1530440430))  # 2018-07-01T10:20:30Z
    # ffmpeg's ASF writes the Unix epoch as the creation date when it is given none (no date);
    # its AVI writes "date" as the ICRD text, a camera's local clock
    video = ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=s=32x32:r=5", "-t", "0.2",
             "-fflags", "+bitexact"]
    subprocess.run([*video, "-c:v", "wmv2", str(HERE / "epoch.wmv")], check=True)
    subprocess.run([*video, "-c:v", "mjpeg", "-metadata", "date=2014-03-03 03:03:03", str(HERE / "local_date.avi")],
                   check=True)
