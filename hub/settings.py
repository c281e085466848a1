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
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="The API refuses larger request bodies (413)"
    )

    # Relaying. Keys come from the environment only; they are never stored or logged.
    relayer_key: SecretStr | None = Field(default=None, description="Key that sends deliveries")
    guardian_key: SecretStr | None = Field(
        default=None,
        description="The token bridges' guardian: returns transfers, applies rate limits",
    )
    validator_key: SecretStr | None = Field(default=None, description="This validator's key")
    validator_config: Path | None = Field(
        default=None,
        description="A validator's own chains (RPC URLs, gateway, finality): a JSON/TOML file",
    )
    validator_queues: list[str] = Field(
        default_factory=lambda: ["validator-1", "validator-2", "validator-3"],
        description="The queues beat sends attestation work to, one per validator worker",
    )
    tick_seconds: float = Field(default=0.5, gt=0)
    lease_seconds: float = Field(
        default=10.0, gt=0, description="How long a dead submitter's or scanner's lock lasts"
    )
    scan_range: int = Field(default=500, ge=1, description="Most blocks read in one scan")
    batch_size: int = Field(default=50, ge=1, le=500)
    max_in_flight: int = Field(default=4, ge=1, description="Delivery txs pending per chain+key")
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    stuck_after_seconds: float = Field(default=12.0, gt=0)
    fee_bump_percent: int = Field(default=25, ge=10)
    max_fee_cap_gwei: int = Field(default=500, ge=1)

    # A Celery worker serves its /metrics here (its processes' metrics added up).
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="A worker's /metrics port; unset: none"
    )
    metrics_host: str = "127.0.0.1"

    state_dir: Path = DEFAULT_STATE_DIR
    log_level: str = "INFO"
