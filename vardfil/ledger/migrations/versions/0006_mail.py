"""E-mail: an address on each account, and a record of every message sent (each is sent once).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from vardfil.ledger.tables import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
    op.create_table(
        "sent_message",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipients", sa.Integer, nullable=False),
        sa.Column("via", sa.String(8), nullable=False),
        sa.Column("sent_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
