"""Alembic environment: runs on the connection `immich_drop.db.migrate` hands over, or on DATABASE_URL.

`alembic -c migrations/alembic.ini upgrade head` applies the migrations by hand; the app applies
them at start-up.
"""

import os

from alembic import context
from sqlmodel import SQLModel

import immich_drop.models  # noqa: F401 - registers the tables on SQLModel.metadata

target_metadata = SQLModel.metadata


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from immich_drop.config import Settings
    from immich_drop.db import create_engine

    url = os.environ.get("DATABASE_URL") or Settings.from_env().db_url
    with create_engine(url).begin() as conn:
        run(conn)
