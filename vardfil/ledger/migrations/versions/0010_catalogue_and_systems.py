"""The catalogue and the journal systems.

- ``role_grant.suspended_at``: a grant whose commission the catalogue no longer holds is suspended
  (not deleted); a returning commission lifts it.
- ``directory_sync``: every run of the catalogue sync, with its report.
- ``journal_system`` and ``journal_system_unit``: journal systems known by the HSA-id of their SITHS
  function certificate, and the units each may send for.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from vardfil.ledger.tables import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("role_grant") as batch:
        batch.add_column(sa.Column("suspended_at", UtcDateTime, nullable=True))
    op.create_table(
        "directory_sync",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
    )
    op.create_table(
        "journal_system",
        sa.Column("hsa_id", sa.String(31), primary_key=True),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("revoked_at", UtcDateTime, nullable=True),
    )
    op.create_table(
        "journal_system_unit",
        sa.Column("system_hsaid", sa.String(31), sa.ForeignKey("journal_system.hsa_id"), primary_key=True),
        sa.Column("unit_hsaid", sa.String(31), primary_key=True),
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
