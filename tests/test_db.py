"""The migrations build exactly the schema the models describe, and running them twice is harmless."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from immich_drop.db import migrate, open_engine


def test_migrated_schema_matches_models(database_url):
    from immich_drop.config import database_url as normalise

    engine = open_engine(normalise(database_url))
    migrate(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []
    engine.dispose()


def test_postgres_is_configured_for_the_database_tests():
    import os

    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set: the database tests ran on SQLite only "
                    "(.ci/run starts PostgreSQL and sets it, e.g. postgresql://postgres:postgres@127.0.0.1:5432/postgres)")
