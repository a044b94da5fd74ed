"""Closes, published underlag lines and settlements.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from vardfil.ledger.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "period_close",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("closed_at", UtcDateTime, nullable=False),
        sa.Column("recorded_at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("underlag_path", sa.String(512), nullable=False),
        sa.Column("total", sa.String(32), nullable=False),
    )
    op.create_table(
        "underlag_line",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("close_period", sa.String(7), sa.ForeignKey("period_close.period"), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("file_type", sa.String(3), nullable=False),
        sa.Column("unit_hsaid", sa.String(31), nullable=False),
        sa.Column("component", sa.String(24), nullable=False),
        sa.Column("quantity", sa.String(32)),
        sa.Column("unit_price", sa.String(32)),
        sa.Column("amount", sa.String(32), nullable=False),
        sa.Column("corrected_period", sa.String(7)),
    )
    op.create_index("ix_underlag_line_unit", "underlag_line", ["close_period", "unit_hsaid"])
    op.create_table(
        "settlement",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("file_type", sa.String(3), nullable=False),
        sa.Column("unit_hsaid", sa.String(31), nullable=False),
        sa.Column("received_file_id", sa.Integer, sa.ForeignKey("received_file.id")),
        sa.Column("total", sa.String(32), nullable=False),
        sa.Column("settled_in", sa.String(7), nullable=False),
        sa.Column("settled_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_settlement_key", "settlement", ["period", "file_type", "unit_hsaid"])


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
