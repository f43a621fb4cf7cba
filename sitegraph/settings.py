"""Settings from the environment (and an optional ``.env``), read once through :func:`get_settings`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

StoreKind = Literal["memory", "neo4j"]


class Settings(BaseSettings):
    """Every knob sitegraph reads from its environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    sitegraph_home: Path = Field(
        default=Path(".sitegraph"), description="Where the embedded store and the local Neo4j keep their data."
    )
    sitegraph_store: StoreKind = Field(default="memory", description="Which store commands use unless --store is given.")
    neo4j_uri: str | None = Field(
        default=None, description="Bolt URI; defaults to the local server started by `sitegraph neo4j start`."
    )
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr | None = None
    neo4j_database: str = "neo4j"
    sitegraph_api_keys: SecretStr = Field(
        default=SecretStr(""), description="Comma-separated API keys accepted by write endpoints."
    )
    sitegraph_cors_origins: str = Field(default="", description="Comma-separated origins allowed by CORS ('*' for any).")
    sitegraph_api_precompute: bool = Field(
        default=True,
        description="The API answers every site's profile, related sites and tactics ahead, per snapshot, in the background.",
    )

    @property
    def home(self) -> Path:
        return self.sitegraph_home

    def api_keys(self) -> frozenset[str]:
        raw = self.sitegraph_api_keys.get_secret_value()
        return frozenset(k.strip() for k in raw.split(",") if k.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use (not at import)."""
    return Settings()
