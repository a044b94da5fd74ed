"""A life for the data: the access log (append-only, like the audit log), the commissions a
session signed in with, the gallring decisions and what each removed.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

from vardfil.ledger.tables import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("hsa_id", sa.String(64)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("commission", sa.String(255)),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("unit_hsaid", sa.String(31)),
        sa.Column("period", sa.String(7)),
        sa.Column("file", sa.String(255), nullable=False),
        sa.Column("receipts", sa.Text, nullable=False),
        sa.Column("patients", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("address", sa.String(64)),
    )
    op.create_index("ix_access_log_at", "access_log", ["at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION vardfil_access_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'access_log is append-only'; END $$
        """)
        op.execute("""
            CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
            FOR EACH ROW EXECUTE FUNCTION vardfil_access_append_only()
        """)
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER access_log_no_{event.lower()} BEFORE {event} ON access_log
                BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END
            """)
    op.add_column("web_session", sa.Column("commissions", sa.Text, nullable=True))
    op.create_table(
        "log_review",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("reviewed_at", UtcDateTime, nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("report_sha256", sa.String(64), nullable=False),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
    )
    op.create_table(
        "gallring_decision",
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("what", sa.String(16), nullable=False),
        sa.Column("before", UtcDateTime, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", UtcDateTime, nullable=False),
    )
    op.add_column("received_file", sa.Column("gallrad_at", UtcDateTime, nullable=True))
    op.add_column("received_file", sa.Column("gallrad_by", sa.String(64), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
