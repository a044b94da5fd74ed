"""Typed actors, names compared without case, the sessions' last activity.

- ``account.name_key`` and ``api_token.name_key``: the name as it is compared (NFKC, case folded),
  unique, so ``Anna`` and ``anna`` are one name (``vardfil.names``). Two legacy names with one key
  keep working: the later one's key gets ``#<id>``.
- ``web_session.last_seen_at``: a session idle longer than the idle timeout signs nobody in.
- ``received_file.actor`` rewritten to a typed actor (``vardfil.actors``), since who may read a file
  that names no unit (F01) is decided by it: a portal upload's account name becomes
  ``person:<account id>`` (exact name, portal uploads only), an API token's ``api:<name>`` becomes
  ``token:<id>`` when exactly one token has that name, every other source ``job:<source>``; what
  cannot be told becomes ``job:legacy`` (readable by analysts only). The audit log is append-only
  and never rewritten: its old entries keep their old actors, shown as such.
- A person number in a received file's name or in its stored kvittens (a form the masking did not
  know yet: ten digits, a space, a wrong check digit) is masked, as the intake now does. The audit
  log's old entries are masked where they are shown, never rewritten.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from vardfil.ledger.tables import UtcDateTime
from vardfil.names import name_key

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _keys(rows: list[tuple[int, str]]) -> dict[int, str]:
    seen: set[str] = set()
    out = {}
    for row_id, name in sorted(rows):
        key = name_key(name)[:128]
        if key in seen:
            key = f"{key[:110]}#{row_id}"
        seen.add(key)
        out[row_id] = key
    return out


def upgrade() -> None:
    bind = op.get_bind()
    for table, column in (("account", "username"), ("api_token", "name")):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("name_key", sa.String(128), nullable=True))
        rows = [(r[0], r[1]) for r in bind.execute(sa.text(f"SELECT id, {column} FROM {table}"))]
        for row_id, key in _keys(rows).items():
            bind.execute(sa.text(f"UPDATE {table} SET name_key = :k WHERE id = :i"), {"k": key, "i": row_id})
        with op.batch_alter_table(table) as batch:
            batch.alter_column("name_key", existing_type=sa.String(128), nullable=False)
            batch.create_unique_constraint(f"uq_{table}_name_key", ["name_key"])
    with op.batch_alter_table("web_session") as batch:
        batch.add_column(sa.Column("last_seen_at", UtcDateTime, nullable=True))

    accounts = {r[1]: r[0] for r in bind.execute(sa.text("SELECT id, username FROM account"))}
    tokens: dict[str, list[int]] = {}
    for tid, name in bind.execute(sa.text("SELECT id, name FROM api_token")):
        tokens.setdefault(f"api:{name}"[:128], []).append(tid)
    pairs = list(bind.execute(sa.text("SELECT DISTINCT source, actor FROM received_file")))
    for source, actor in pairs:
        if source == "portal":
            new = f"person:{accounts[actor]}" if actor in accounts else "job:legacy"
        elif source == "api":
            found = tokens.get(actor, [])
            new = f"token:{found[0]}" if len(found) == 1 else "job:legacy"
        else:
            new = f"job:{source}" if source in ("cli", "inbox", "dag") else "job:legacy"
        bind.execute(
            sa.text("UPDATE received_file SET actor = :new WHERE source = :s AND actor = :a"),
            {"new": new, "s": source, "a": actor},
        )
    _mask_received(bind)


def _mask_received(bind: sa.engine.Connection) -> None:
    import json

    from vardfil.privacy import masked  # polars: imported when this runs, not when alembic loads

    rows = bind.execute(sa.text("SELECT id, file_name, kvittens_json FROM received_file"))
    for row_id, name, kvittens in list(rows):
        kv = json.loads(kvittens)
        new_name, new_kv = masked(name), masked(kv)
        if new_name != name or new_kv != kv:
            bind.execute(
                sa.text("UPDATE received_file SET file_name = :n, kvittens_json = :k WHERE id = :i"),
                {"n": new_name, "k": json.dumps(new_kv, ensure_ascii=False), "i": row_id},
            )


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
