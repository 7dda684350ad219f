"""The database engine and its schema: `open_engine(url)` brings the schema to the newest revision and returns it.

SQLite is the embedded default. It runs in WAL mode so the status channel can read while the
delivery worker writes. The engine is synchronous; `store` calls it from worker threads.

Alembic owns the schema's history (migrations/versions/), but importing it costs the server about
11 MB resident for its whole life (bench/), so start-up only imports it when there is something to
migrate: a database already at the newest revision is left alone, and an empty one is built from
the models and stamped with that revision (Alembic's "building an up-to-date database from scratch"
recipe; tests/test_db.py proves both ways give the same schema).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .files import FILE_MODE, private_dir, private_file
from .resources import migrations_dir


def create_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite, the folder is created and WAL plus a busy timeout are set."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            if not Path(path).parent.exists():  # a folder of its own; one that exists may be shared: left as it is
                private_dir(Path(path).parent)
            os.close(private_file(Path(path), os.O_RDWR))  # SQLite gives its -wal and -shm files these modes
            os.chmod(path, FILE_MODE)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - SQLAlchemy's signature
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to Alembic's head revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def head_revision() -> str:
    """The newest revision id, read from the migration files' `revision` / `down_revision` lines."""
    revisions, parents = set(), set()
    for path in (migrations_dir() / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision = re.search(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        parent = re.search(r"^down_revision\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        if revision:
            revisions.add(revision.group(1))
        if parent:
            parents.add(parent.group(1))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads, expected one")
    return heads.pop()


def prepare(engine: Engine) -> str:
    """Bring the schema to the newest revision; returns "current", "created" (empty database) or "migrated"."""
    from sqlmodel import SQLModel

    from . import models  # noqa: F401 - registers the tables on SQLModel.metadata

    head = head_revision()
    with _schema_lock(engine):
        with engine.begin() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            if "alembic_version" in tables:
                if conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head]:
                    return "current"
            elif not tables:
                SQLModel.metadata.create_all(conn)
                version = sa.Table("alembic_version", sa.MetaData(),
                                   sa.Column("version_num", sa.String(32), nullable=False),
                                   sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))
                version.create(conn)
                conn.execute(version.insert().values(version_num=head))
                return "created"
        migrate(engine)
        return "migrated"


SCHEMA_LOCK = 0x1D20_5C4E  # a PostgreSQL advisory lock key of this app's own


@contextlib.contextmanager
def _schema_lock(engine: Engine):
    """One process at a time looks at and changes the schema: replicas may start at the same moment on
    an empty database (without this, the second failed with "table already exists", tests/test_db.py)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK})
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with os.fdopen(private_file(Path(f"{database}.lock"), os.O_APPEND | os.O_WRONLY), "a") as fh:  # an OS lock beside it
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def open_engine(url: str) -> Engine:
    engine = create_engine(url)
    prepare(engine)
    return engine
