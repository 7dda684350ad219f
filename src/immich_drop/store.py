"""Every database query of the app, behind async methods that run the SQL in a worker thread.

`Store(engine)` is shared by the tus hooks, the delivery worker and the routes. Rows come back
detached (plain values), so callers never hold a session open across an `await`.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta
from typing import Any, Callable, Collection, Iterable, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from .models import (
    Account,
    AdminSession,
    Invite,
    InviteGuest,
    InviteRefusal,
    KnownAsset,
    Upload,
    UploadState,
    aware,
    utcnow,
)

T = TypeVar("T")
R = TypeVar("R")


class Store:
    def __init__(self, engine: Engine | None = None):
        self.engine = engine

    def bind(self, engine: Engine) -> None:
        self.engine = engine

    async def _run(self, fn: Callable[[Session], T]) -> T:
        def work() -> T:
            with Session(self.engine, expire_on_commit=False) as session:
                return fn(session)

        return await asyncio.to_thread(work)

    async def _transaction(self, fn: Callable[[sa.Connection], T], after: Callable[[T], Any] | None = None) -> T:
        """`fn(connection)` in one transaction on a worker thread, without an ORM session: for the
        statements run several times per file (prebuilt, on a bare connection; 100 us of CPU
        against 185 us through a Session, bench/). `after(result)` runs in the same thread once the
        transaction is committed: blocking work that would otherwise cost a thread hop of its own."""
        def work() -> T:
            with self.engine.begin() as conn:
                result = fn(conn)
            if after is not None:
                after(result)
            return result

        return await asyncio.to_thread(work)

    # --- health -----------------------------------------------------------
    async def ping(self) -> None:
        await self._run(lambda s: s.exec(select(1)).one())

    # --- uploads ----------------------------------------------------------
    async def add_upload(self, upload: Upload) -> Upload:
        """Record a new upload (every column as `upload` holds it) and return it as given: transient,
        like the rows the store reads. One INSERT on a bare connection, not a Session's unit of work
        (a row a file: 700 µs of CPU against 300, bench/README.md)."""
        # None where the column has a default means "the default", as a Session's INSERT takes it
        values = {column.key: value for column in UPLOAD.c if (value := getattr(upload, column.key)) is not None
                  or (column.default is None and column.server_default is None)}
        await self._transaction(lambda conn: conn.execute(_INSERT_UPLOAD, values))
        return upload

    async def get_upload(self, upload_id: str) -> Upload | None:
        # Read on every tus request (the guard's checks): a prebuilt statement on a bare connection,
        # not the ORM's identity-map load, a third of the work of a small PATCH's row read (bench/).
        return await self._read_one(_GET_UPLOAD, {"uid": upload_id}, Upload)

    async def upload_and_invite(self, upload_id: str) -> tuple[Upload | None, Invite | None]:
        """An upload and, if it came through an invite link, that invite: what every PATCH is checked
        against, in one hop and one read transaction (the guard's two reads before, bench/README.md)."""
        def work():
            with self.engine.connect() as conn:
                upload = _one(conn, _GET_UPLOAD, {"uid": upload_id}, Upload)
                linked = upload is not None and upload.target_kind == "invite" and upload.target_id
                return upload, _one(conn, _GET_INVITE, {"key": upload.target_id}, Invite) if linked else None

        return await asyncio.to_thread(work)

    async def _read_one(self, statement: sa.Select, params: dict, model: type[R]) -> R | None:
        """The one row `statement` selects (or None) as a detached `model`, read on a bare connection:
        for the rows read several times per file (an upload; with an invite link also the invite, its
        owner's account and the guest's standing: seven reads a file, bench/README.md)."""
        def work() -> R | None:
            with self.engine.connect() as conn:
                return _one(conn, statement, params, model)

        return await asyncio.to_thread(work)

    async def created_with_key(self, session_id: str, key: str, invite_digest: str | None) -> Upload | None:
        """This session's newest upload still receiving that its page created with `key` (the page's
        own key for one file) for the same target: the public page (`invite_digest` None) or the
        invite whose token hashes to `invite_digest`. None if there is none. What a creation sent
        again after its answer was lost finds."""
        if invite_digest is None:
            return await self._read_one(_PUBLIC_WITH_KEY, {"session": session_id, "key": key}, Upload)
        return await self._read_one(_INVITED_WITH_KEY, {"session": session_id, "key": key, "digest": invite_digest},
                                    Upload)

    async def uploads_for_session(self, session_id: str, limit: int = 500,
                                  target: tuple[str, str | None] | None = None) -> list[Upload]:
        """A browser session's uploads, newest first; only those to `target` (kind, id) when given."""
        query = select(Upload).where(Upload.session_id == session_id)
        if target is not None:
            query = query.where(Upload.target_kind == target[0], Upload.target_id == target[1])
        query = query.order_by(Upload.created_at.desc()).limit(limit)
        return await self._run(lambda s: list(s.exec(query)))

    async def receiving(self, then: Callable[[list[tuple]], R]) -> R:
        """What `tus/room.py` asks at every creation, in one thread hop (bench/): `then` applied, in the
        worker thread, to (id, announced size, target kind, session id, client address) of every upload
        still receiving (what the staging disk has promised; `then` may block, e.g. to look at the disk)."""
        def work():
            with self.engine.connect() as conn:
                rows = [tuple(row) for row in conn.execute(_receiving_query())]
            return then(rows)  # the connection is back in the pool: nothing waits on it

        return await asyncio.to_thread(work)

    async def delivered_by_session(self, session_id: str, checksum: str) -> list[Upload]:
        """Uploads this browser session sent in full that reached Immich with this SHA-1 (already.py)."""
        query = select(Upload).where(Upload.session_id == session_id, Upload.checksum == checksum,
                                     Upload.state.in_((UploadState.DONE, UploadState.DUPLICATE)),
                                     Upload.asset_id.is_not(None)).limit(20)
        return await self._run(lambda s: list(s.exec(query)))

    async def receiving_created_before(self, before: datetime, after: str = "", limit: int = 1000) -> list[Upload]:
        """Uploads still receiving that were created before `before`, by id, the next `limit` after `after`."""
        query = select(Upload).where(Upload.state == UploadState.RECEIVING, Upload.created_at < before,
                                     Upload.id > after).order_by(Upload.id).limit(limit)
        return await self._run(lambda s: list(s.exec(query)))

    async def uploads_in_states(self, states: Iterable[str]) -> list[Upload]:
        query = select(Upload).where(Upload.state.in_(tuple(states))).order_by(Upload.created_at)
        return await self._run(lambda s: list(s.exec(query)))

    async def update_upload(self, upload_id: str, *, only_from: Iterable[str] | None = None,
                            held_by: str | None = None, remember: tuple[str, str, str] | None = None,
                            then: Callable[[], None] | None = None, **values: Any) -> Upload | None:
        """Set `values` on one upload and return it, or None if it is gone.

        With `only_from`, the change happens only while the upload is in one of those states
        (a compare-and-set), and None means another writer got there first. With `held_by`, only
        while that delivery worker still holds the upload's lease: a worker whose lease was lost or
        taken over can no longer change what it was delivering. `remember`, (owner, SHA-1, asset
        id), is written to the duplicate cache in the same transaction if the change is made (as
        an upsert: a delivered file's last write is one transaction, not two). `then()` runs in the
        same worker thread once the change is committed, only if it was made (the staged file's
        removal after a delivery: a thread hop fewer a file).
        """

        values["updated_at"] = utcnow()
        stmt = _state_change(tuple(sorted(values)), None if only_from is None else tuple(only_from), held_by is not None)
        params = {"uid": upload_id, **{f"v_{name}": value for name, value in values.items()}}
        if held_by is not None:
            params["holder"] = held_by
        cached = None
        if remember is not None:
            owner, checksum, asset_id = remember
            cached = {"owner": owner, "checksum": checksum, "asset_id": asset_id, "created_at": values["updated_at"]}

        def also(conn: sa.Connection) -> None:
            conn.execute(_upsert_known_asset(conn.dialect.name), cached)

        return await self._transaction(lambda conn: _set_one(conn, stmt, params, also if cached else None),
                                       lambda changed: changed is not None and then and then())

    # --- delivery leases: one process delivers an upload at a time --------------------------
    async def claim_delivery(self, upload_id: str, worker: str, now: datetime, lease: float, send_below: int = 0,
                             then: Callable[[Upload], None] | None = None, *, receiving: bool = False,
                             ) -> tuple[Upload | None, tuple[Invite | None, Account | None] | None]:
        """Take the upload for delivery if it is due and no live lease holds it.

        With `receiving`, the upload is one whose last byte just landed: it is marked received and
        claimed at once (what `Pipeline.received` does when a delivery slot is free: a state change
        and a thread hop fewer a file than a "received" mark, then a claim, bench/README.md).

        A file under `send_below` bytes that no attempt has begun sending goes straight to
        "uploading" with `sent_at` now: the mark `Pipeline._send` would write before its first
        byte, in the same transaction (0: never). Returns the claimed upload (None if it was not
        due: delivered, failed, not due yet, held by another process, or for `receiving`, not
        receiving any more) and, for an upload through an invite link, what its delivery reads
        first, as `invite_and_owner` gives it (else None). `then(upload)` runs in the same worker
        thread after the commit if the upload was claimed (the pipeline reads a photo's capture
        date there)."""
        params = {"uid": upload_id, "now": now, "worker": worker, "until": now + timedelta(seconds=lease),
                  "below": send_below}

        def fn(conn: sa.Connection):
            upload = _set_one(conn, _claim(receiving), params)
            if upload is None or upload.target_kind != "invite" or not upload.target_id:
                return upload, None
            return upload, _invite_and_owner(conn, upload.target_id)

        return await self._transaction(fn, lambda claimed: claimed[0] is not None and then and then(claimed[0]))

    async def renew_lease(self, upload_id: str, worker: str, now: datetime, until: datetime) -> bool:
        """Extend `worker`'s lease on an upload it is delivering; False if the lease is no longer its own
        (expired and taken over, or the upload left the delivery states)."""

        def fn(s: Session) -> bool:
            held = s.exec(sa.update(Upload).where(  # type: ignore[call-overload]
                Upload.id == upload_id, Upload.lease_owner == worker, Upload.lease_until >= now,
                Upload.state.in_((UploadState.HASHING, UploadState.UPLOADING))).values(lease_until=until)).rowcount
            s.commit()
            return held == 1

        return await self._run(fn)

    async def release_leases(self, worker: str, now: datetime) -> None:
        """On shutdown: deliveries this process was in the middle of may be taken over at once.
        Their owner is cleared too: a write of this process still in its thread (a lease renewal
        whose task was cancelled) finds them no longer its own and changes nothing."""

        def fn(s: Session) -> None:
            s.exec(sa.update(Upload).where(Upload.lease_owner == worker,  # type: ignore[call-overload]
                                           Upload.state.in_((UploadState.HASHING, UploadState.UPLOADING)))
                   .values(lease_until=now, lease_owner=None))
            s.commit()

        await self._run(fn)

    async def due_deliveries(self, now: datetime, limit: int = 200) -> list[str]:
        query = select(Upload.id).where(_claimable(now)).order_by(Upload.created_at).limit(limit)
        return await self._run(lambda s: list(s.exec(query)))

    async def count_by_state(self) -> dict[str, int]:
        query = select(Upload.state, sa.func.count()).group_by(Upload.state)
        return await self._run(lambda s: {state: count for state, count in s.exec(query)})

    async def delete_upload(self, upload_id: str, only_from: str | None = None) -> bool:
        """Delete one upload (with `only_from`, only while it is in that state); True if it was."""
        def fn(s: Session) -> bool:
            query = sa.delete(Upload).where(Upload.id == upload_id)
            if only_from is not None:
                query = query.where(Upload.state == only_from)
            deleted = s.exec(query).rowcount  # type: ignore[call-overload]
            s.commit()
            return deleted == 1

        return await self._run(fn)

    # --- duplicate cache ------------------------------------------------------
    async def known_asset(self, owner: str, checksum: str) -> str | None:
        def fn(s: Session) -> str | None:
            row = s.get(KnownAsset, (owner, checksum))
            return row.asset_id if row else None

        return await self._run(fn)

    async def forget_asset(self, owner: str, checksum: str) -> None:
        def fn(s: Session) -> None:
            s.exec(sa.delete(KnownAsset).where(KnownAsset.owner == owner, KnownAsset.checksum == checksum))  # type: ignore[call-overload]
            s.commit()

        await self._run(fn)

    # --- accounts and admin sessions -------------------------------------------------
    async def save_account(self, account: Account) -> Account:
        """A sign-in's account: inserted, or its sign-in columns updated. The notification list is
        not written for an account that exists (a whole-row merge wrote back the list read before
        the sign-in, dropping an address another tab added meanwhile: cold review)."""
        def fn(s: Session) -> Account:
            existing = s.get(Account, account.user_id)
            if existing is None:
                s.add(account)
                s.commit()
                return account
            for name in ("email", "name", "api_key_enc", "api_key_id", "key_valid", "lang", "updated_at"):
                setattr(existing, name, getattr(account, name))
            s.commit()  # an UPDATE of the columns set above only
            return existing

        return await self._run(fn)

    async def get_account(self, user_id: str) -> Account | None:
        return await self._read_one(_GET_ACCOUNT, {"key": user_id}, Account)

    async def set_key_valid(self, user_id: str, valid: bool) -> bool:
        """Returns True when this call changed it (so "the key was refused" is told once)."""
        def fn(s: Session) -> bool:
            changed = s.exec(sa.update(Account).where(  # type: ignore[call-overload]
                Account.user_id == user_id, Account.key_valid.is_(not valid)).values(key_valid=valid)).rowcount
            s.commit()
            return changed == 1

        return await self._run(fn)

    async def set_notify_urls(self, user_id: str, sealed: str, was: str) -> bool:
        """Store the owner's sealed notification list if it is still `was` (a compare-and-set: two
        tabs changing it at once each read the list, and the second write dropped the first's
        address while both answered 201). False if another change came first."""
        def fn(s: Session) -> bool:
            changed = s.exec(sa.update(Account).where(  # type: ignore[call-overload]
                Account.user_id == user_id, Account.notify_urls_enc == was).values(notify_urls_enc=sealed)).rowcount
            s.commit()
            return changed == 1

        return await self._run(fn)

    async def set_notify_failed(self, user_id: str, failed: str, at: datetime | None) -> None:
        """Record what the last notification could not reach (`failed`: a JSON list, "" for none)."""
        def fn(s: Session) -> None:
            s.exec(sa.update(Account).where(Account.user_id == user_id)  # type: ignore[call-overload]
                   .values(notify_failed=failed, notify_failed_at=at))
            s.commit()

        return await self._run(fn)

    async def get_admin_session(self, id_hash: str, now: datetime) -> tuple[AdminSession, Account] | None:
        def fn(s: Session):
            row = s.get(AdminSession, id_hash)
            if row is None or aware(row.expires_at) <= now:
                return None
            account = s.get(Account, row.user_id)
            return (row, account) if account else None

        return await self._run(fn)

    async def delete_admin_session(self, id_hash: str) -> AdminSession | None:
        def fn(s: Session) -> AdminSession | None:
            row = s.get(AdminSession, id_hash)
            if row is not None:
                s.delete(row)
                s.commit()
            return row

        return await self._run(fn)

    async def delete_expired_admin_sessions(self, now: datetime) -> None:
        def fn(s: Session) -> None:
            s.exec(sa.delete(AdminSession).where(AdminSession.expires_at <= now))  # type: ignore[call-overload]
            s.commit()

        await self._run(fn)

    # --- invites ---------------------------------------------------------------------------
    async def add(self, row):
        def fn(s: Session):
            s.add(row)
            s.commit()
            return row

        return await self._run(fn)

    async def get_invite(self, invite_id: str) -> Invite | None:
        return await self._read_one(_GET_INVITE, {"key": invite_id}, Invite)

    async def invite_by_token_hash(self, digest: str) -> Invite | None:
        return await self._read_one(_INVITE_BY_TOKEN, {"key": digest}, Invite)

    async def invites_of(self, owner_id: str) -> list[Invite]:
        query = (select(Invite).where(Invite.owner_id == owner_id, Invite.deleted_at.is_(None))
                 .order_by(Invite.created_at.desc()))
        return await self._run(lambda s: list(s.exec(query)))

    async def update_invite(self, invite_id: str, **values: Any) -> Invite | None:
        """Change an invite; a new (or removed) password locks every browser that unlocked the old one."""

        def fn(s: Session) -> Invite | None:
            s.exec(sa.update(Invite).where(Invite.id == invite_id).values(**values))  # type: ignore[call-overload]
            if "password_hash" in values:
                s.exec(sa.update(InviteGuest).where(InviteGuest.invite_id == invite_id)  # type: ignore[call-overload]
                       .values(unlocked=False))
            s.commit()
            return s.get(Invite, invite_id)

        return await self._run(fn)

    async def uploads_of_invite(self, invite_id: str, limit: int = 1000) -> list[Upload]:
        query = (select(Upload).where(Upload.target_kind == "invite", Upload.target_id == invite_id)
                 .order_by(Upload.created_at.desc()).limit(limit))
        return await self._run(lambda s: list(s.exec(query)))

    async def receiving_of_invite(self, invite_id: str) -> list[Upload]:
        """Every upload of the link still arriving, however many, oldest first."""
        query = select(Upload).where(Upload.target_kind == "invite", Upload.target_id == invite_id,
                                     Upload.state == UploadState.RECEIVING).order_by(Upload.created_at)
        return await self._run(lambda s: list(s.exec(query)))

    async def undelivered_of_invite(self, invite_id: str) -> list[str]:
        """Every upload of the link still arriving or waiting to reach Immich, however many (a link's
        deletion drops them all: the first 1,000 of the log were not all of them, attack run)."""
        query = select(Upload.id).where(_undelivered_of(invite_id)).order_by(Upload.created_at)
        return await self._run(lambda s: list(s.exec(query)))

    async def fail_undelivered_of_invite(self, invite_id: str, message: str, maybe_sent: str,
                                         leave: Collection[str] = ()) -> list[Upload]:
        """End every upload of a deleted link still arriving or waiting to reach Immich, but those in
        `leave` (attempts of this process, which end them one by one), in one transaction: state
        "failed", lease let go, with `message`, or `maybe_sent` for one whose sending had begun
        (marked "uploading", or `sent_at` set). Returns the uploads it ended. (One by one, 1,000
        of them took 30 s on PostgreSQL under load: CI.)"""
        began = sa.or_(UPLOAD.c.state == UploadState.UPLOADING, UPLOAD.c.sent_at.is_not(None))
        now = utcnow()

        def fn(conn: sa.Connection) -> list[Upload]:
            ids = [uid for uid, in conn.execute(sa.select(UPLOAD.c.id).where(_undelivered_of(invite_id)))
                   if uid not in leave]
            ended = []
            for at in range(0, len(ids), 500):  # bounded IN lists (an older SQLite takes 999 parameters)
                chunk = ids[at:at + 500]
                stmt = sa.update(UPLOAD).where(UPLOAD.c.id.in_(chunk), UPLOAD.c.state.in_(UNDELIVERED)).values(
                    state=UploadState.FAILED, lease_owner=None, updated_at=now,
                    message=sa.case((began, sa.literal(maybe_sent, sa.String)), else_=sa.literal(message, sa.String)))
                if conn.dialect.update_returning:
                    ended += conn.execute(stmt.returning(*UPLOAD.c))
                else:  # the rows this change made (not one a delivery ended meanwhile)
                    conn.execute(stmt)
                    ended += conn.execute(sa.select(UPLOAD).where(
                        UPLOAD.c.id.in_(chunk), UPLOAD.c.state == UploadState.FAILED, UPLOAD.c.updated_at == now))
            return [_loaded(Upload, row._mapping) for row in ended]

        return await self._transaction(fn)

    async def add_refusal(self, refusal: InviteRefusal, keep: int) -> None:
        """Log a refused upload, keeping only the invite's `keep` latest refusals."""
        def fn(s: Session) -> None:
            s.add(refusal)
            s.flush()
            oldest_kept = (select(InviteRefusal.id).where(InviteRefusal.invite_id == refusal.invite_id)
                           .order_by(InviteRefusal.id.desc()).offset(keep - 1).limit(1))
            cutoff = s.exec(oldest_kept).first()
            if cutoff is not None:
                s.exec(sa.delete(InviteRefusal).where(  # type: ignore[call-overload]
                    InviteRefusal.invite_id == refusal.invite_id, InviteRefusal.id < cutoff))
            s.commit()

        await self._run(fn)

    async def refusals_of(self, invite_id: str) -> list[InviteRefusal]:
        query = select(InviteRefusal).where(InviteRefusal.invite_id == invite_id).order_by(InviteRefusal.id.desc())
        return await self._run(lambda s: list(s.exec(query)))

    # --- what owners are told about (notify.py) -----------------------------------------------
    async def finished_uploads_between(self, invite_id: str, after: datetime | None, until: datetime) -> list[Upload]:
        """The invite's uploads that reached a final state in (after, until]: what a digest covers."""
        query = select(Upload).where(Upload.target_kind == "invite", Upload.target_id == invite_id,
                                     Upload.state.in_(UploadState.FINAL), Upload.updated_at <= until)
        if after is not None:
            query = query.where(Upload.updated_at > after)
        return await self._run(lambda s: list(s.exec(query)))

    async def claim_digest(self, invite_id: str, seen: datetime | None, until: datetime) -> bool:
        """Move the invite's digest mark from `seen` to `until`; False if another process moved it first."""
        def fn(s: Session) -> bool:
            mark = Invite.digest_until.is_(None) if seen is None else Invite.digest_until == seen
            moved = s.exec(sa.update(Invite).where(Invite.id == invite_id, mark)  # type: ignore[call-overload]
                           .values(digest_until=until)).rowcount
            s.commit()
            return moved == 1

        return await self._run(fn)

    async def claim_closed_notice(self, invite_id: str) -> bool:
        """True for the one caller that gets to tell the owner this link closed."""
        def fn(s: Session) -> bool:
            moved = s.exec(sa.update(Invite).where(  # type: ignore[call-overload]
                Invite.id == invite_id, Invite.closed_noticed.is_(False)).values(closed_noticed=True)).rowcount
            s.commit()
            return moved == 1

        return await self._run(fn)

    async def expired_unnoticed_invites(self, now: datetime) -> list[Invite]:
        """Links that expired in the last day and whose owner was not told (older ones stay quiet: no
        burst of stale notices when an owner adds a notification address later)."""
        query = select(Invite).where(Invite.expires_at <= now, Invite.expires_at > now - timedelta(days=1),
                                     Invite.closed_noticed.is_(False),
                                     Invite.deleted_at.is_(None), Invite.disabled.is_(False))
        return await self._run(lambda s: list(s.exec(query)))

    async def invites_with_undigested_uploads(self) -> list[str]:
        """Invites whose finished uploads were not in a digest yet (picked up again at start-up)."""
        query = (select(Invite.id).join(Upload, sa.and_(Upload.target_kind == "invite", Upload.target_id == Invite.id))
                 .where(Upload.state.in_(UploadState.FINAL), Invite.deleted_at.is_(None),
                        sa.or_(Invite.digest_until.is_(None), Upload.updated_at > Invite.digest_until)).distinct())
        return await self._run(lambda s: list(s.exec(query)))

    async def waiting_uploads_of_owner(self, owner_id: str) -> list[Upload]:
        query = (select(Upload).join(Invite, sa.and_(Upload.target_kind == "invite", Upload.target_id == Invite.id))
                 .where(Invite.owner_id == owner_id, Upload.state.in_(UploadState.PENDING_DELIVERY)))
        return await self._run(lambda s: list(s.exec(query)))

    async def guest_standing(self, invite_id: str, session_id: str) -> InviteGuest | None:
        return await self._read_one(_GET_STANDING, {"key": invite_id, "session": session_id}, InviteGuest)

    async def invite_for_guest(self, digest: str, session_id: str) -> tuple[Invite, InviteGuest | None,
                                                                             Account | None] | None:
        """What every upload through a link is checked against, read in one thread hop and one read
        transaction (three hops before, bench/README.md): the invite whose token hashes to `digest`,
        this browser session's standing with it and its owner's account; None for no such invite.
        Rows as `_read_one` gives them."""
        def work():
            with self.engine.connect() as conn:
                invite = _one(conn, _INVITE_BY_TOKEN, {"key": digest}, Invite)
                if invite is None:
                    return None
                return (invite, _one(conn, _GET_STANDING, {"key": invite.id, "session": session_id}, InviteGuest),
                        _one(conn, _GET_ACCOUNT, {"key": invite.owner_id}, Account))

        return await asyncio.to_thread(work)

    async def invite_and_owner(self, invite_id: str) -> tuple[Invite | None, Account | None]:
        """An invite and its owner's account, in one hop (every delivery through a link asks)."""
        def work():
            with self.engine.connect() as conn:
                return _invite_and_owner(conn, invite_id)

        return await asyncio.to_thread(work)

    async def unlock_invite(self, invite_id: str, session_id: str) -> None:
        def fn(s: Session) -> None:
            row = s.get(InviteGuest, (invite_id, session_id)) or InviteGuest(invite_id=invite_id, session_id=session_id)
            row.unlocked = True
            s.add(row)
            s.commit()

        await self._run(fn)

    async def claim_invite(self, invite_id: str, session_id: str) -> bool:
        """Count this browser session as one use of the invite, once; False when no use is left
        for it (True if a parallel request of the same session took the last one).

        The use is taken by a conditional UPDATE, so two sessions racing for the last use cannot both win.
        """

        def fn(s: Session) -> bool:
            for _ in range(3):
                row = s.get(InviteGuest, (invite_id, session_id))
                if row is not None and row.claimed:
                    return True
                # A browser that unlocked a password has its row already: the claim is marked first,
                # conditionally, so two of its requests at once cannot both take a use (they did:
                # one guest counted as two or four uses of a three-use link).
                if row is not None and s.exec(sa.update(InviteGuest).where(  # type: ignore[call-overload]
                        InviteGuest.invite_id == invite_id, InviteGuest.session_id == session_id,
                        InviteGuest.claimed.is_(False)).values(claimed=True)).rowcount != 1:
                    s.rollback()  # a parallel request of this browser marked it: look again
                    continue
                taken = s.exec(sa.update(Invite).where(  # type: ignore[call-overload]
                    Invite.id == invite_id, sa.or_(Invite.max_uses.is_(None), Invite.uses < Invite.max_uses)
                ).values(uses=Invite.uses + 1)).rowcount
                if taken != 1:
                    # the last use is gone, perhaps to a parallel request of this same browser (its
                    # first files created at once): its claim is committed by now, and counts
                    s.rollback()
                    row = s.get(InviteGuest, (invite_id, session_id))
                    return row is not None and row.claimed
                if row is None:
                    s.add(InviteGuest(invite_id=invite_id, session_id=session_id, claimed=True))
                try:
                    s.commit()
                    return True
                except IntegrityError:  # the same session claimed in a parallel request: look again
                    s.rollback()
            return False

        return await self._run(fn)

    async def reserve_invite(self, invite_id: str, size: int) -> Invite | None:
        """Reserve one file of `size` bytes against the invite's limits, atomically: the invite as it
        is after the reservation (the owner's console is told from it), or None when a limit is reached."""
        params = {"key": invite_id, "size": size, "now": utcnow()}

        def work(conn: sa.Connection) -> Invite | None:
            row = _updated(conn, _RESERVE, params, _GET_INVITE, {"key": invite_id})
            return None if row is None else _loaded(Invite, row._mapping)

        return await self._transaction(work)

    async def release_invite(self, invite_id: str, size: int) -> None:
        def fn(s: Session) -> None:
            s.exec(sa.update(Invite).where(Invite.id == invite_id).values(  # type: ignore[call-overload]
                files=sa.case((Invite.files > 0, Invite.files - 1), else_=0),
                bytes=sa.case((Invite.bytes > size, Invite.bytes - size), else_=0)))
            s.commit()

        await self._run(fn)


UPLOAD = Upload.__table__
_GET_UPLOAD = sa.select(*UPLOAD.c).where(UPLOAD.c.id == sa.bindparam("uid"))
_INSERT_UPLOAD = sa.insert(UPLOAD)
_INVITE, _ACCOUNT, _STANDING = Invite.__table__, Account.__table__, InviteGuest.__table__
_WITH_KEY = (sa.select(*UPLOAD.c).where(UPLOAD.c.session_id == sa.bindparam("session"),
                                        UPLOAD.c.client_key == sa.bindparam("key"),
                                        UPLOAD.c.state == UploadState.RECEIVING)
             .order_by(UPLOAD.c.created_at.desc()).limit(1))
_PUBLIC_WITH_KEY = _WITH_KEY.where(UPLOAD.c.target_kind == "public")
_INVITED_WITH_KEY = _WITH_KEY.where(UPLOAD.c.target_kind == "invite", UPLOAD.c.target_id == sa.select(
    _INVITE.c.id).where(_INVITE.c.token_hash == sa.bindparam("digest")).scalar_subquery())
_GET_INVITE = sa.select(*_INVITE.c).where(_INVITE.c.id == sa.bindparam("key"))
_INVITE_BY_TOKEN = sa.select(*_INVITE.c).where(_INVITE.c.token_hash == sa.bindparam("key"))
_GET_ACCOUNT = sa.select(*_ACCOUNT.c).where(_ACCOUNT.c.user_id == sa.bindparam("key"))
_GET_STANDING = sa.select(*_STANDING.c).where(_STANDING.c.invite_id == sa.bindparam("key"),
                                              _STANDING.c.session_id == sa.bindparam("session"))
_RESERVE = _INVITE.update().where(
    _INVITE.c.id == sa.bindparam("key"),
    sa.or_(_INVITE.c.max_files.is_(None), _INVITE.c.files < _INVITE.c.max_files),
    sa.or_(_INVITE.c.max_total_bytes.is_(None), _INVITE.c.bytes + sa.bindparam("size") <= _INVITE.c.max_total_bytes),
).values(files=_INVITE.c.files + 1, bytes=_INVITE.c.bytes + sa.bindparam("size"), last_upload_at=sa.bindparam("now"))


@functools.lru_cache(maxsize=64)
def _state_change(names: tuple[str, ...], only_from: tuple[str, ...] | None, held: bool = False) -> sa.Update:
    """UPDATE upload SET <names> WHERE id = :uid [AND state IN only_from] [AND lease_owner = :holder],
    built once per shape: state changes are the most frequent writes (five per file) and building the
    statement cost as much as running it (bench/)."""
    stmt = sa.update(UPLOAD).where(UPLOAD.c.id == sa.bindparam("uid"))
    if only_from is not None:
        stmt = stmt.where(_one_of(UPLOAD.c.state, only_from))
    if held:
        stmt = stmt.where(UPLOAD.c.lease_owner == sa.bindparam("holder"))
    return stmt.values({name: sa.bindparam(f"v_{name}") for name in names})


UNDELIVERED = (UploadState.RECEIVING, *UploadState.PENDING_DELIVERY)  # still arriving or waiting to reach Immich


def _undelivered_of(invite_id: str):
    """The link's uploads still arriving or waiting to reach Immich (what its deletion ends)."""
    return sa.and_(UPLOAD.c.target_kind == "invite", UPLOAD.c.target_id == invite_id, UPLOAD.c.state.in_(UNDELIVERED))


def _claimable(now):
    """Due for delivery at `now` (a datetime, or a bind parameter in the prebuilt claim)."""
    S = UploadState
    return sa.or_(
        Upload.state == S.RECEIVED,
        sa.and_(Upload.state == S.RETRYING, sa.or_(Upload.next_attempt_at.is_(None), Upload.next_attempt_at <= now)),
        sa.and_(_one_of(Upload.state, (S.HASHING, S.UPLOADING)),
                sa.or_(Upload.lease_until.is_(None), Upload.lease_until < now)),
    )


def _one_of(column, values: Iterable[str]):
    """`column IN (?, ?)` with one fixed parameter per value: `in_(values)` makes an "expanding"
    parameter that SQLAlchemy renders into the SQL again at every execution (about 50 µs a state
    change, bench/README.md), though the prebuilt statements always hold the same values."""
    return column.in_([sa.literal(value, sa.String) for value in values])


@functools.cache
def _claim(receiving: bool) -> sa.Update:
    """The delivery claim (`Store.claim_delivery`), built once per shape like the state changes."""
    sends_now = sa.and_(UPLOAD.c.size < sa.bindparam("below"), UPLOAD.c.sent_at.is_(None))
    now = sa.bindparam("now", type_=UPLOAD.c.updated_at.type)
    due = UPLOAD.c.state == UploadState.RECEIVING if receiving else _claimable(now)
    return (sa.update(UPLOAD).where(UPLOAD.c.id == sa.bindparam("uid"), due)
            .values(state=sa.case((sends_now, sa.literal(UploadState.UPLOADING, sa.String)),
                                  else_=sa.literal(UploadState.HASHING, sa.String)),
                    sent_at=sa.case((sends_now, now), else_=UPLOAD.c.sent_at),
                    updated_at=now, message="", lease_owner=sa.bindparam("worker"), lease_until=sa.bindparam("until"),
                    **({"received_at": now} if receiving else {})))


@functools.lru_cache(maxsize=4)
def _upsert_known_asset(dialect: str) -> sa.Insert:
    # the two databases config accepts; the engine has already loaded its own dialect's module
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    table = KnownAsset.__table__
    stmt = insert(table).values({name: sa.bindparam(name) for name in ("owner", "checksum", "asset_id", "created_at")})
    return stmt.on_conflict_do_update(index_elements=[table.c.owner, table.c.checksum],
                                      set_={"asset_id": stmt.excluded.asset_id})


@functools.lru_cache(maxsize=128)
def _returning(stmt: sa.Update) -> sa.Update:
    """The statement with RETURNING every column of its table, made once per prebuilt statement (it
    is compiled once)."""
    return stmt.returning(*stmt.table.c)


@functools.cache
def _receiving_query() -> sa.Select:
    return sa.select(UPLOAD.c.id, UPLOAD.c.size, UPLOAD.c.target_kind, UPLOAD.c.session_id,
                     UPLOAD.c.client_address).where(UPLOAD.c.state == UploadState.RECEIVING)


def _set_one(conn: sa.Connection, stmt: sa.Update, params: dict,
             also: Callable[[sa.Connection], None] | None = None) -> Upload | None:
    """Run a conditional UPDATE of one upload in `conn`'s transaction: the updated row, or None if
    the condition did not hold. `also(conn)` runs in the same transaction, only if the row was updated.

    One statement with RETURNING (SQLite 3.35+, PostgreSQL); an older SQLite gets UPDATE then SELECT."""
    row = _updated(conn, stmt, params, _GET_UPLOAD, {"uid": params["uid"]})
    if row is None:
        return None  # nothing was changed: the transaction ends with nothing to undo
    if also is not None:
        also(conn)
    return _loaded(Upload, row._mapping)


def _updated(conn: sa.Connection, stmt: sa.Update, params: dict, select: sa.Select, keys: dict) -> sa.Row | None:
    """Run `stmt`, a conditional UPDATE of one row: the row as it now is, or None if the condition did
    not hold. With RETURNING where the database has it, else the UPDATE then `select` with `keys`."""
    if not conn.dialect.update_returning:
        return conn.execute(select, keys).one() if conn.execute(stmt, params).rowcount == 1 else None
    return conn.execute(_returning(stmt), params).one_or_none()


def _invite_and_owner(conn: sa.Connection, invite_id: str) -> tuple[Invite | None, Account | None]:
    invite = _one(conn, _GET_INVITE, {"key": invite_id}, Invite)
    return invite, None if invite is None else _one(conn, _GET_ACCOUNT, {"key": invite.owner_id}, Account)


def _one(conn: sa.Connection, statement: sa.Select, params: dict, model: type[R]) -> R | None:
    """The one row `statement` selects, as `_loaded` makes it, or None."""
    row = conn.execute(statement, params).one_or_none()
    return None if row is None else _loaded(model, row._mapping)


def _loaded(model: type[R], mapping) -> R:
    """A detached `model` holding a row's values, made as the ORM makes the objects it loads (a new
    instance with its attribute dict filled in). `Upload(**row)` sets each of the 26 columns through
    the instrumented constructor: 97 µs against 3 µs, and a row is read or returned several times
    per file (bench/). The column names are the attribute names (tests/test_store.py compares them
    with what a Session loads). The object is transient (no identity key): it is read, never handed
    to `Session.add` (that would INSERT it again); changes go through the store's UPDATEs."""
    row = model._sa_class_manager.new_instance()
    row.__dict__.update(mapping)
    return row


