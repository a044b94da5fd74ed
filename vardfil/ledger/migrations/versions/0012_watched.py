"""Watched at 15:00: a message whose sending failed stays on record until a retry succeeds (the
outbox's health is then a query); an audit entry names the request that made it; the hashes of a
file's findings and accepted rows, and of every published file, for ``vardfil verify``.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from vardfil.ledger.tables import UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sent_message") as batch:
        batch.add_column(sa.Column("state", sa.String(8), nullable=False, server_default="sent"))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("failed_at", UtcDateTime, nullable=True))
    # Plain ADD COLUMN, not a batch: on SQLite a batch copies the table, and the copy would lose
    # the triggers that keep the audit log append-only.
    op.add_column("audit_log", sa.Column("request_id", sa.String(64), nullable=True))
    op.add_column("received_file", sa.Column("findings_sha256", sa.String(64), nullable=True))
    op.add_column("received_file", sa.Column("accepted_sha256", sa.String(64), nullable=True))
    op.create_table(
        "published_file",
        sa.Column("path", sa.String(500), primary_key=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("written_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
