"""The first ledger: received files, finding counts, period states, dispens, approvals, audit log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from vardfil.ledger.tables import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _files()
    _month()
    _audit_log()


def _files() -> None:
    """What was received, and what each file was judged to be."""
    op.create_table(
        "received_file",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("receipt_id", sa.String(40), nullable=False, unique=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("recorded_at", UtcDateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("file_type", sa.String(3)),
        sa.Column("unit_hsaid", sa.String(31)),
        sa.Column("period", sa.String(7)),
        sa.Column("sequence", sa.Integer),
        sa.Column("spec_version", sa.String(32)),
        sa.Column("deadline", UtcDateTime),
        sa.Column("on_time", sa.Boolean),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows_total", sa.Integer, nullable=False),
        sa.Column("rows_accepted", sa.Integer, nullable=False),
        sa.Column("rows_rejected", sa.Integer, nullable=False),
        sa.Column("rows_with_warnings", sa.Integer, nullable=False),
        sa.Column("kvittens_json", sa.Text, nullable=False),
        sa.Column("findings_path", sa.String(255), nullable=False),
        sa.Column("accepted_path", sa.String(255)),
    )
    op.create_index("ix_received_file_key", "received_file", ["unit_hsaid", "file_type", "period", "received_at"])
    op.create_table(
        "finding_count",
        sa.Column("received_file_id", sa.Integer, sa.ForeignKey("received_file.id"), primary_key=True),
        sa.Column("rule", sa.String(8), primary_key=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )


def _month() -> None:
    """The month's decisions: period states, dispens, approvals."""
    op.create_table(
        "period_state",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_table(
        "dispens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("unit_hsaid", sa.String(31), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("deadline", UtcDateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("granted_by", sa.String(128), nullable=False),
        sa.Column("granted_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_dispens_unit_period", "dispens", ["unit_hsaid", "period"])
    op.create_table(
        "approval",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("unit_hsaid", sa.String(31)),
        sa.Column("file_type", sa.String(3)),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )


def _audit_log() -> None:
    """The audit log, append-only, enforced by the database itself."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255)),
        sa.Column("detail", sa.Text),
    )
    # The audit log is append-only, enforced by the database itself.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION vardfil_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$
        """)
        op.execute("""
            CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION vardfil_audit_append_only()
        """)
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log
                BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
            """)


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
