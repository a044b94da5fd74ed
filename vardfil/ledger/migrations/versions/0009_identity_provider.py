"""People from the region's identity provider: HSA-ids, grants, sign-ins under way, IdP sessions.

- ``account.hsa_id`` (unique) and ``display_name``: a person who signs in through the IdP is their
  HSA-id; ``account_unit.admin``: administrator of that unit (the role ``unit_admin`` of a
  password account still means every unit of the account).
- ``role_grant``: ``analyst`` or ``unit_admin`` of a unit granted to an HSA-id inside vardfil.
- ``oidc_login``: a sign-in's state, nonce and PKCE verifier, bound to the browser; used once.
- ``oidc_seen_token``: the logout tokens taken (replays refused).
- ``web_session.oidc_sid``, ``oidc_sub``, ``id_token``: the IdP session behind a portal session.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from vardfil.ledger.tables import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.add_column(sa.Column("hsa_id", sa.String(31), nullable=True))
        batch.add_column(sa.Column("display_name", sa.String(200), nullable=True))
        batch.create_unique_constraint("uq_account_hsa_id", ["hsa_id"])
    with op.batch_alter_table("account_unit") as batch:
        batch.add_column(sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()))
    op.execute(
        "UPDATE account_unit SET admin = TRUE WHERE account_id IN (SELECT id FROM account WHERE role = 'unit_admin')"
    )
    with op.batch_alter_table("account_unit") as batch:
        batch.alter_column("admin", existing_type=sa.Boolean, server_default=None)
    with op.batch_alter_table("web_session") as batch:
        batch.add_column(sa.Column("oidc_sid", sa.String(255), nullable=True))
        batch.add_column(sa.Column("oidc_sub", sa.String(255), nullable=True))
        batch.add_column(sa.Column("id_token", sa.Text, nullable=True))
    op.create_table(
        "role_grant",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person_hsaid", sa.String(31), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("unit_hsaid", sa.String(31), nullable=True),
        sa.Column("granted_by", sa.String(128), nullable=False),
        sa.Column("granted_at", UtcDateTime, nullable=False),
        sa.Column("revoked_at", UtcDateTime, nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_role_grant_person", "role_grant", ["person_hsaid"])
    op.create_table(
        "oidc_login",
        sa.Column("state_sha256", sa.String(64), primary_key=True),
        sa.Column("binding_sha256", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("used_at", UtcDateTime, nullable=True),
    )
    op.create_table(
        "oidc_seen_token",
        sa.Column("jti_sha256", sa.String(64), primary_key=True),
        sa.Column("seen_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
