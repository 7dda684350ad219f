"""When a received file was taken, in the guest's time zone: what Immich is sent as `fileCreatedAt`.

`taken_at(upload, path, in_background)` reads the date inside the file (EXIF, QuickTime, ...) in a
background thread (`date_of` in the calling one); a date without an offset is placed in the guest's zone. Without one, the file's
`lastModified` from the browser, else the time it was received, else now.

`guest_zone(upload, at)` is the guest's zone: the browser's IANA name when the page sent it, so the
offset is the one in force at that instant (summer time for a photo taken in July, whatever the date
of the upload); else the fixed offset the browser had at upload time (older pages); else None.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Awaitable, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .media import capture_date, from_ms
from .models import Upload, utcnow


def guest_zone(upload: Upload) -> tzinfo | None:
    if upload.tz_name:
        try:
            return ZoneInfo(upload.tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a name this server's tz database lacks (or nonsense): fall back to the offset
    if upload.tz_offset_minutes is not None:
        return timezone(timedelta(minutes=upload.tz_offset_minutes))
    return None


async def taken_at(upload: Upload, path: Path,
                   in_background: Callable[..., Awaitable] = asyncio.to_thread) -> datetime:
    return await in_background(date_of, upload, path)


def date_of(upload: Upload, path: Path) -> datetime:
    """`taken_at` in the calling thread (it reads the file: never on the event loop)."""
    zone = guest_zone(upload)
    found = capture_date(path, upload.filename, zone)
    if found:
        return found
    fallback = from_ms(upload.last_modified_ms) or upload.received_at or utcnow()
    return fallback.astimezone(zone) if zone is not None else fallback
