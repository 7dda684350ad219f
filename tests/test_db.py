"""The migrations build exactly the schema the models describe, and running them twice is harmless."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from immich_drop.db import migrate, open_engine


def test_migrated_schema_matches_models(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path}/state.db")
    migrate(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []
    engine.dispose()
