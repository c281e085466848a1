"""Alembic environment: the URL comes from the caller's config or from Settings."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from hub.db.engine import make_engine
from hub.db.models import Base, EnumText, UtcDateTime
from hub.settings import Settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings().database_url


def _render_item(kind: str, obj: Any, _context: Any) -> str | bool:
    """Migrations name plain SQLAlchemy types, never the hub's own decorators."""
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, EnumText):
        return "sa.String(length=16)"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
