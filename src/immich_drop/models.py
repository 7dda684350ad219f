"""Database tables. Every query on them lives in `store`; schema changes go through `migrations/`."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their timezone; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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
    client_address: str | None = Field(default=None, max_length=64)  # and its address (public page quotas)
    target_kind: str = Field(max_length=16)  # "public" now, "invite" later
    target_id: str | None = Field(default=None, max_length=64, index=True)
    filename: str = Field(max_length=1024)
    filetype: str = Field(default="", max_length=255)
    size: int = Field(sa_type=sa.BigInteger)  # bytes; files above 2 GiB are ordinary for video
    last_modified_ms: int | None = Field(default=None, sa_type=sa.BigInteger)  # the browser's File.lastModified
    tz_offset_minutes: int | None = None  # the browser's UTC offset today (older pages send only this)
    tz_name: str | None = Field(default=None, max_length=64)  # the browser's IANA zone: the offset at any date
    state: str = Field(default=UploadState.RECEIVING, index=True, max_length=16)
    message: str = Field(default="", max_length=2048)
    checksum: str | None = Field(default=None, max_length=40)  # SHA-1, hex
    captured_at: str | None = Field(default=None, max_length=40)  # ISO-8601 with offset, as sent to Immich
    asset_id: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    next_attempt_at: datetime | None = None  # retrying: not before this
    lease_owner: str | None = Field(default=None, max_length=64)  # the process delivering it now
    lease_until: datetime | None = None  # after this, another process may take the delivery over
    sent_at: datetime | None = None  # an attempt began sending the bytes to Immich: a later "duplicate" is ours
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    received_at: datetime | None = None
    # what the guest wrote, if the link asks (guest_fields.py): shown in the owner's log, sent as the description
    guest_name: str = Field(default="", max_length=100, sa_column_kwargs={"server_default": ""})
    guest_message: str = Field(default="", max_length=1000, sa_column_kwargs={"server_default": ""})
    # the guest page's own key for this file: a creation sent again after its answer was lost finds
    # the upload the first one made, instead of a second that takes another place in the link's limits
    client_key: str | None = Field(default=None, max_length=64)


class KnownAsset(SQLModel, table=True):
    """Local duplicate cache: this Immich owner already has an asset with this SHA-1."""

    owner: str = Field(primary_key=True, max_length=64)
    checksum: str = Field(primary_key=True, max_length=40)
    asset_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Account(SQLModel, table=True):
    """An Immich user who signed in here, and the least-privilege key minted for their invites."""

    user_id: str = Field(primary_key=True, max_length=64)
    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=255)
    api_key_enc: str = Field(default="", max_length=2048)  # Fernet, see `secrets_box`
    api_key_id: str | None = Field(default=None, max_length=64)
    key_valid: bool = True  # False once Immich refused the key: "sign in again"
    notify_urls_enc: str = Field(default="", max_length=16384)  # the owner's Apprise URLs, a sealed JSON list
    lang: str | None = Field(default=None, max_length=8)  # the owner's language for notifications (i18n.LANGUAGES)
    # the last notification's addresses that did not take it (a JSON list, masked as the console lists
    # them) and when; "" and None once one reached them all (the console says so: owner walk)
    notify_failed: str = Field(default="", max_length=4096, sa_column_kwargs={"server_default": ""})
    notify_failed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class AdminSession(SQLModel, table=True):
    id_hash: str = Field(primary_key=True, max_length=64)  # sha256 of the cookie's random id
    user_id: str = Field(index=True, max_length=64)
    immich_token_enc: str = Field(default="", max_length=4096)  # to end the Immich session at logout
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class InviteState:
    ACTIVE = "active"
    EXPIRED = "expired"
    USED_UP = "used up"
    FULL = "full"  # its file or byte limit is taken (by files sent or on their way): no file more
    # (a link both used up and full is "used up": the browsers without a use are refused by that name)
    DISABLED = "disabled"
    DELETED = "deleted"


class Invite(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    token_hash: str = Field(unique=True, max_length=64)  # sha256 of the URL token: looked up, never compared
    token_enc: str = Field(max_length=512)  # so the owner can copy the link again
    owner_id: str = Field(index=True, max_length=64)
    label: str = Field(default="", max_length=200)  # private to the owner
    title: str = Field(default="", max_length=200)  # what guests see as the page's heading
    album_id: str | None = Field(default=None, max_length=64)
    album_name: str = Field(default="", max_length=255)
    max_uses: int | None = None  # None: unlimited; 1: one-time
    uses: int = 0  # browser sessions that claimed the link
    expires_at: datetime | None = None
    password_hash: str | None = Field(default=None, max_length=255)
    max_file_size: int | None = Field(default=None, sa_type=sa.BigInteger)
    max_total_bytes: int | None = Field(default=None, sa_type=sa.BigInteger)
    max_files: int | None = None
    media_kind: str = Field(default="all", max_length=8)  # all | photos | videos
    files: int = 0  # reserved at creation, released if an upload is cancelled or expires
    bytes: int = Field(default=0, sa_type=sa.BigInteger)
    last_upload_at: datetime | None = None
    disabled: bool = False
    deleted_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    guest_fields: str = Field(default="optional", max_length=8,  # optional | required | hidden: name and message
                              sa_column_kwargs={"server_default": "optional"})
    archive: bool = False  # files arrive archived in Immich: in the album, not in the timeline until reviewed
    digest_until: datetime | None = None  # uploads finished before this were in a digest to the owner
    closed_noticed: bool = False  # the owner was told the link is used up, full or expired


class InviteRefusal(SQLModel, table=True):
    """An upload an invite refused, for the owner's log ("why did my photo not go through?")."""

    id: int | None = Field(default=None, primary_key=True)
    invite_id: str = Field(index=True, max_length=32)
    filename: str = Field(max_length=1024)
    size: int = Field(sa_type=sa.BigInteger)
    code: str = Field(max_length=32)  # too_large, wrong_kind, limit_reached, used_up, ... (see targets)
    message: str = Field(default="", max_length=512)  # the English words the guest got
    guest_name: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow)


class InviteGuest(SQLModel, table=True):
    """A browser session's standing with one invite: unlocked its password, claimed a use."""

    invite_id: str = Field(primary_key=True, max_length=32)
    session_id: str = Field(primary_key=True, max_length=64)
    unlocked: bool = False
    claimed: bool = False
    created_at: datetime = Field(default_factory=utcnow)
