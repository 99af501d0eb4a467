"""Where the shop keeps its data: DATA_DIR, DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bot.settings.base import ConcernSettings


class DatabaseSettings(ConcernSettings):
    data_dir: Path = Field(
        Path("./data"), description="Where the SQLite file and the generated vault key live."
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in DATA_DIR.")

    @property
    def url(self) -> str:
        """The database to open: DATABASE_URL, else the SQLite file ``DATA_DIR/keyshop.db``."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'keyshop.db').resolve()}"
