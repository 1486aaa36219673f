"""One settings model, read from the environment on first use and cached."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration; every field maps to an ROOMTEMP_* environment variable."""

    model_config = SettingsConfigDict(env_prefix="ROOMTEMP_", frozen=True)

    table_name: str = "roomtemp"
    max_future_seconds: int = 300
    raw_retention_days: int = 0
    write_max_attempts: int = 8
    # Reports (issue 5): the bucket is shared with S3 ingestion (issue 4), same name and default.
    bucket_name: str = "roomtemp-data"
    reports_queue_url: str = ""
    # Parallel rollup refreshes per write request (1 under moto in-process, not thread-safe).
    rollup_threads: int = 8


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment)."""
    get_settings.cache_clear()
