"""message v2: the source gateway and the gas limit are part of a message

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows from before (version 1 messages) named neither: they get "" and 0, then the
    # defaults go, so every new row states both.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("src_gateway", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("gas_limit", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("src_gateway", server_default=None)
        batch_op.alter_column("gas_limit", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("gas_limit")
        batch_op.drop_column("src_gateway")
