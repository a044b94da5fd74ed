"""Alembic environment: migrations run on a connection handed in by ``vardfil.ledger.database``."""

from alembic import context

from vardfil.ledger.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
