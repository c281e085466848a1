"""The hub's settings: one object, read from the environment (prefix HUB_) at process start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path(".state")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_STATE_DIR}/hub.db",
        description="SQLAlchemy URL: a SQLite file, or postgresql+psycopg://user@host/db",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token with the admin role; unset disables it"
    )
    reads_require_key: bool = False

    # The RPC network policy: which URLs the hub agrees to contact when a chain registers.
    rpc_allowed_schemes: list[str] = ["http", "https"]
    rpc_allow_private: bool = Field(
        default=True,
        description="Allow loopback and private-range hosts (set false on a public deployment)",
    )
    rpc_allowed_hosts: list[str] = Field(
        default_factory=list, description="If set, only these hosts (or *.suffix) are allowed"
    )
    rpc_denied_hosts: list[str] = Field(default_factory=list)
    rpc_timeout: float = Field(default=5.0, gt=0, le=60)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    state_dir: Path = DEFAULT_STATE_DIR
    log_level: str = "INFO"
