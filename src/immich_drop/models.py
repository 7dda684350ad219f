"""Database tables. Every query on them lives in `store`; schema changes go through `migrations/`."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UploadState:
    """The life of one upload. `receiving` until the last byte; then the delivery worker's states."""

    RECEIVING = "receiving"
    RECEIVED = "received"
    HASHING = "hashing"
    UPLOADING = "uploading"
    RETRYING = "retrying"  # Immich unreachable or 5xx: the file is kept and tried again later
    DONE = "done"
    DUPLICATE = "duplicate"
    FAILED = "failed"  # Immich refused it (4xx): final, with Immich's message

    FINAL = (DONE, DUPLICATE, FAILED)
    PENDING_DELIVERY = (RECEIVED, HASHING, UPLOADING, RETRYING)


class Upload(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)  # the tus upload id
    session_id: str = Field(index=True, max_length=64)  # the browser session that created it
    target_kind: str = Field(max_length=16)  # "public" now, "invite" later
    target_id: str | None = Field(default=None, max_length=64, index=True)
    filename: str = Field(max_length=1024)
    filetype: str = Field(default="", max_length=255)
    size: int = Field(sa_type=sa.BigInteger)  # bytes; files above 2 GiB are ordinary for video
    last_modified_ms: int | None = Field(default=None, sa_type=sa.BigInteger)  # the browser's File.lastModified
    tz_offset_minutes: int | None = None  # the browser's UTC offset, for EXIF times without one
    state: str = Field(default=UploadState.RECEIVING, index=True, max_length=16)
    message: str = Field(default="", max_length=2048)
    checksum: str | None = Field(default=None, max_length=40)  # SHA-1, hex
    captured_at: str | None = Field(default=None, max_length=40)  # ISO-8601 with offset, as sent to Immich
    asset_id: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    received_at: datetime | None = None


class KnownAsset(SQLModel, table=True):
    """Local duplicate cache: this Immich owner already has an asset with this SHA-1."""

    owner: str = Field(primary_key=True, max_length=64)
    checksum: str = Field(primary_key=True, max_length=40)
    asset_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
