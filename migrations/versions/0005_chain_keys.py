"""chain keys: a foreign key to chains.id is `*_chain_key`, a chain's own id stays `*_chain_id`

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 08:30:00

Renames only: every row, value and index stays. `ALTER TABLE ... RENAME COLUMN` is native on
Postgres and on SQLite (3.25+), and both rewrite the constraints that name the column (the
routes' check and unique constraints, the primary keys of cursors and validator_sets).
Postgres also renames the foreign keys, whose names follow the column's; SQLite keeps a
foreign key's name inside the table's DDL, where no statement can rename it, and nothing
reads it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, old column, new column)
RENAMES = (
    ("routes", "src_chain_id", "src_chain_key"),
    ("routes", "dst_chain_id", "dst_chain_key"),
    ("assets", "home_chain_id", "home_chain_key"),
    ("asset_deployments", "chain_id", "chain_key"),
    ("cursors", "chain_id", "chain_key"),
    ("validator_sets", "chain_id", "chain_key"),
)


def _rename(table: str, old: str, new: str) -> None:
    op.execute(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
    if op.get_bind().dialect.name == "postgresql":
        fk = f"fk_{table}_{{}}_chains"
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {fk.format(old)} TO {fk.format(new)}")


def upgrade() -> None:
    for table, old, new in RENAMES:
        _rename(table, old, new)


def downgrade() -> None:
    for table, old, new in RENAMES:
        _rename(table, new, old)
