"""The schema: Alembic's migrations and the start-up fast path (an empty database built from the models,
a current one left alone) give exactly the schema the models describe, and the server only imports
Alembic when there is something to migrate."""

import os
import stat
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from immich_drop.config import database_url as normalise
from immich_drop.db import create_engine, head_revision, migrate, open_engine, prepare
from immich_drop.files import private_dir
from immich_drop.resources import migrations_dir


def alembic_config(conn) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["connection"] = conn
    return cfg


def structure(engine) -> dict:
    """Every table's columns, key, indexes and foreign keys as the database itself reports them."""
    inspector = sa.inspect(engine)
    return {table: {
        "columns": sorted((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)),  # order aside:
        # columns added by a later migration come last in the migrated table
        "pk": inspector.get_pk_constraint(table)["constrained_columns"],
        "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)),
        "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"]) for f in inspector.get_foreign_keys(table)),
    } for table in sorted(inspector.get_table_names())}


def version(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def test_migrations_build_the_models_schema(database_url):
    engine = create_engine(normalise(database_url))
    migrate(engine)
    migrate(engine)  # idempotent
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    assert prepare(engine) == "current"
    engine.dispose()


def test_an_empty_database_is_built_from_the_models_exactly_as_the_migrations_build_it(database_url):
    engine = create_engine(normalise(database_url))
    migrate(engine)
    by_migrations = structure(engine)
    with engine.begin() as conn:
        SQLModel.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE alembic_version"))
    assert sa.inspect(engine).get_table_names() == []

    assert prepare(engine) == "created"
    assert structure(engine) == by_migrations
    assert version(engine) == [head_revision()]
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    engine.dispose()


def test_an_older_database_is_migrated_at_start_up_and_keeps_its_rows(database_url):
    engine = create_engine(normalise(database_url))
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0002")
        conn.execute(sa.text("INSERT INTO knownasset (owner, checksum, asset_id, created_at) VALUES ('u', 'c', 'a', '2026-11-23 12:00:00')"))
    assert prepare(engine) == "migrated"
    assert version(engine) == [head_revision()]
    assert "lease_until" in {c["name"] for c in sa.inspect(engine).get_columns("upload")}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT asset_id FROM knownasset")).scalar_one() == "a"
    engine.dispose()


def test_the_head_read_from_the_files_is_alembics_head():
    assert head_revision() == ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def test_a_server_starting_on_an_empty_or_current_database_does_not_load_alembic(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    code = ("import sys\nfrom immich_drop.db import open_engine, prepare\n"
            f"engine = open_engine({url!r})\nprint(prepare(engine), 'alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.split() == ["current", "False"]


def test_a_database_file_in_a_shared_folder_leaves_the_folder_as_it_was(tmp_path):
    """DATABASE_URL may name a file in a folder others use (a sticky /tmp, a 0755 /srv): the file is
    private (0600), the folder keeps its mode. Narrowing a sticky /tmp to 0700 locked every other
    user (here the peer's PostgreSQL) out of it."""
    shared, sticky, fresh = tmp_path / "shared", tmp_path / "sticky", tmp_path / "new" / "db"
    for folder, mode in ((shared, 0o755), (sticky, 0o1777)):
        folder.mkdir()
        folder.chmod(mode)
    for folder in (shared, sticky, fresh):
        open_engine(f"sqlite:///{folder}/state.db").dispose()
        assert stat.S_IMODE((folder / "state.db").stat().st_mode) == 0o600
    assert [stat.S_IMODE(f.stat().st_mode) for f in (shared, sticky, fresh)] == [0o755, 0o1777, 0o700]
    assert private_dir(sticky) == sticky and stat.S_IMODE(sticky.stat().st_mode) == 0o1777


def test_postgres_is_configured_for_the_database_tests():
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set: the database tests ran on SQLite only "
                    "(.ci/run starts PostgreSQL and sets it, e.g. postgresql://postgres:postgres@127.0.0.1:5432/postgres)")


def test_replicas_starting_together_on_an_empty_database_both_come_up(database_url):
    """Two processes sharing one database may start at the same moment: one builds the schema, the other
    waits for it (PostgreSQL; SQLite's file lock does the same), neither fails."""
    import threading

    url, barrier, outcomes = normalise(database_url), threading.Barrier(4), []

    def start() -> None:
        engine = create_engine(url)
        barrier.wait()
        try:
            outcomes.append(prepare(engine))
        except Exception as exc:  # the assertion below shows it
            outcomes.append(repr(exc))
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["created", "current", "current", "current"]
