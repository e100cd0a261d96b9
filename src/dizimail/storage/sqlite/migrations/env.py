"""Alembic environment: migrations run on the connection handed in by SqliteDatabase.upgrade."""

from alembic import context

from dizimail.storage.sqlite.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
