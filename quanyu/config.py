"""Settings from the environment (``QUANYU_`` prefix) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from quanyu.errors import ConfigError


class Settings(BaseSettings):
    """Everything Quanyu reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="QUANYU_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("quanyu-data"), description="Where the database lives.")
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None, description="URL clients use to reach the API (defaults to http://host:port)."
    )
    log_level: str = "INFO"
    default_rate_limit: int = Field(
        default=100_000, description="Events per second a source may send unless it sets its own."
    )
    commit_interval_ms: float = Field(
        default=2.0, description="How long the writer waits to gather a group commit."
    )
    max_commit_events: int = 20_000
    journal_ack_ms: float = Field(
        default=100.0,
        ge=0,
        description=(
            "A tracking call whose commit takes longer (a database checkpoint holds every"
            " commit for a second or so) is answered once its events are synced to the"
            " ingest journal; they reach the database a moment later. 60000 (the commit"
            " timeout) or more: every call waits for its commit."
        ),
    )
    dedup_window_hours: int = Field(
        default=24,
        ge=24,
        description=(
            "How long a (source, messageId) is remembered: a retry within it adds nothing."
            " Segment's window is about a day; a longer one keeps more keys, and each"
            " checkpoint of the database rewrites their index (~0.5 s at 10 M keys)."
        ),
    )
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    refresh_interval: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between passes that refresh tags and audiences in the server.",
    )
    checkpoint_interval: float = Field(
        default=300.0,
        gt=0,
        description="Seconds between signed checkpoints of each tenant's Merkle log (only"
        " when it grew).",
    )

    delivery_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="Days a delivered, failed or skipped audience push stays in the outbox"
        " (its body holds people's identifiers); 0 keeps them for good. Consent news is"
        " always kept: it is the evidence of who was told.",
    )
    webhook_allow_private_networks: bool = Field(
        default=False,
        description="Let webhook destinations (audience pushes, consent subscribers) be on"
        " private, loopback or link-local addresses; by default only public addresses are"
        " reached (see quanyu.delivery.netguard).",
    )
    memory_limit_gib: float | None = Field(
        default=None,
        gt=0,
        description="Memory DuckDB may use for queries (its cache included); default: half"
        " the machine's memory, leaving the rest to the audience indexes and the server.",
    )

    @property
    def database_path(self) -> Path:
        """The DuckDB file inside the data dir."""
        return self.data_dir / "quanyu.duckdb"

    @property
    def server_file(self) -> Path:
        """The file a running server writes so the CLI can find it."""
        return self.data_dir / "server.json"

    @property
    def base_url(self) -> str:
        """The URL the API is reachable at."""
        return self.public_url or f"http://{self.host}:{self.port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Build the settings once, on first use (never at import time).

    Raises:
        ConfigError: a ``QUANYU_*`` variable (or ``.env`` line) has a value the setting
            cannot take; the message names each one and what it must be.
    """
    try:
        return Settings()
    except ValidationError as e:
        problems = "; ".join(
            f"QUANYU_{'_'.join(str(p) for p in err['loc']).upper()}={err.get('input')!r}:"
            f" {err['msg']}"
            for err in e.errors()
        )
        raise ConfigError(
            f"Invalid setting: {problems}. Fix or unset it (environment or .env)."
        ) from e
