"""The hub's settings: one object, read from the environment (prefix HUB_) at process start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path(".state")
MIN_ADMIN_TOKEN = 24


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_STATE_DIR}/hub.db",
        description="SQLAlchemy URL: a SQLite file, or postgresql+psycopg://user@host/db",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    admin_token: SecretStr | None = Field(
        default=None,
        description=f"Bearer token with the admin role, {MIN_ADMIN_TOKEN}+ characters; unset "
        "disables it",
    )

    # The RPC network policy: which URLs and addresses the hub agrees to contact for a chain.
    rpc_allowed_schemes: list[str] = ["http", "https"]
    rpc_allow_private: bool = Field(
        default=False,
        description="Allow loopback, private and other non-public addresses (`islands up` turns "
        "this on for its local chains)",
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
    deployer_key: SecretStr | None = Field(
        default=None,
        description="Owner of the token bridges: joins a chain to an asset (API and CLI)",
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
    # ~100 bridge transfers take ~10M gas: well inside a block and EIP-7825's 2^24 per tx
    # (a batch over it is halved by the simulation); the raw limit peaks at 50-200.
    batch_size: int = Field(default=100, ge=1, le=500)
    max_in_flight: int = Field(
        default=8, ge=1, description="Delivery txs pending per chain+key (pipelined nonces)"
    )
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

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        # A short token can be guessed over the network; refuse to start with one.
        if token is not None and len(token.get_secret_value()) < MIN_ADMIN_TOKEN:
            raise ValueError(
                f"must be at least {MIN_ADMIN_TOKEN} characters, not "
                f"{len(token.get_secret_value())}; make one with: python3 -c "
                '"import secrets; print(secrets.token_urlsafe(32))"'
            )
        return token


class SettingsError(Exception):
    """The environment holds settings the hub refuses to start with; the message names each
    variable and why, never its value."""


def load_settings() -> Settings:
    """The settings from the environment, or SettingsError with one line per bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"HUB_{'_'.join(str(p) for p in error['loc']).upper()}: {_reason(error['msg'])}"
            for error in exc.errors(include_input=False, include_url=False)
        ]
        raise SettingsError("; ".join(problems)) from None


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")
