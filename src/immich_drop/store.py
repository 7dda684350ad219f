"""Every database query of the app, behind async methods that run the SQL in a worker thread.

`Store(engine)` is shared by the tus hooks, the delivery worker and the routes. Rows come back
detached (plain values), so callers never hold a session open across an `await`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Callable, Iterable, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from .models import KnownAsset, Upload, UploadState, utcnow

T = TypeVar("T")


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

    # --- health -----------------------------------------------------------
    async def ping(self) -> None:
        await self._run(lambda s: s.exec(select(1)).one())

    # --- uploads ----------------------------------------------------------
    async def add_upload(self, upload: Upload) -> Upload:
        def fn(s: Session) -> Upload:
            s.add(upload)
            s.commit()
            return upload

        return await self._run(fn)

    async def get_upload(self, upload_id: str) -> Upload | None:
        return await self._run(lambda s: s.get(Upload, upload_id))

    async def uploads_for_session(self, session_id: str, limit: int = 500) -> list[Upload]:
        query = select(Upload).where(Upload.session_id == session_id).order_by(Upload.created_at.desc()).limit(limit)
        return await self._run(lambda s: list(s.exec(query)))

    async def uploads_in_states(self, states: Iterable[str]) -> list[Upload]:
        query = select(Upload).where(Upload.state.in_(tuple(states))).order_by(Upload.created_at)
        return await self._run(lambda s: list(s.exec(query)))

    async def update_upload(self, upload_id: str, *, only_from: Iterable[str] | None = None, **values: Any) -> Upload | None:
        """Set `values` on one upload and return it, or None if it is gone.

        With `only_from`, the change happens only while the upload is in one of those states
        (a compare-and-set), and None means another writer got there first.
        """

        def fn(s: Session) -> Upload | None:
            stmt = sa.update(Upload).where(Upload.id == upload_id).values(updated_at=utcnow(), **values)
            if only_from is not None:
                stmt = stmt.where(Upload.state.in_(tuple(only_from)))
            if s.exec(stmt).rowcount != 1:  # type: ignore[call-overload]
                s.rollback()
                return None
            s.commit()
            return s.get(Upload, upload_id)

        return await self._run(fn)

    async def delete_upload(self, upload_id: str) -> None:
        def fn(s: Session) -> None:
            s.exec(sa.delete(Upload).where(Upload.id == upload_id))  # type: ignore[call-overload]
            s.commit()

        await self._run(fn)

    async def stale_receiving(self, before: datetime) -> list[Upload]:
        query = select(Upload).where(Upload.state == UploadState.RECEIVING, Upload.updated_at < before)
        return await self._run(lambda s: list(s.exec(query)))

    # --- duplicate cache ------------------------------------------------------
    async def known_asset(self, owner: str, checksum: str) -> str | None:
        def fn(s: Session) -> str | None:
            row = s.get(KnownAsset, (owner, checksum))
            return row.asset_id if row else None

        return await self._run(fn)

    async def remember_asset(self, owner: str, checksum: str, asset_id: str) -> None:
        def fn(s: Session) -> None:
            row = s.get(KnownAsset, (owner, checksum))
            if row is None:
                s.add(KnownAsset(owner=owner, checksum=checksum, asset_id=asset_id))
            else:
                row.asset_id = asset_id
            s.commit()

        await self._run(fn)

    async def forget_asset(self, owner: str, checksum: str) -> None:
        def fn(s: Session) -> None:
            s.exec(sa.delete(KnownAsset).where(KnownAsset.owner == owner, KnownAsset.checksum == checksum))  # type: ignore[call-overload]
            s.commit()

        await self._run(fn)
