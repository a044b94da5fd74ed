"""A dispens can be withdrawn before the close: a row of its own, the newest row in force.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispens") as batch:
        batch.add_column(sa.Column("withdrawn", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("dispens") as batch:
        batch.alter_column("withdrawn", existing_type=sa.Boolean, server_default=None)


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
