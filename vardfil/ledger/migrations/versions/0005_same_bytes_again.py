"""The same bytes may be recorded more than once.

From 2026.2 (FILSPECIFIKATION.md section 9, readings 21–22) a byte-identical file is a copy only of
an earlier file that was not AVVISAD and names the same unit; otherwise it is a new submission,
judged anew, with a receipt of its own. ``received_file.sha256`` stays indexed (copies are found
by it) but is no longer unique.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("received_file_sha256_key", "received_file", type_="unique")
    else:
        # SQLite cannot drop a constraint: the table is copied without it. Its unique constraint
        # was created unnamed; the naming convention lets the copy name it in order to drop it.
        with op.batch_alter_table(
            "received_file", recreate="always", naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"}
        ) as batch:
            batch.drop_constraint("uq_received_file_sha256", type_="unique")
    op.create_index("ix_received_file_sha256", "received_file", ["sha256"])


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
