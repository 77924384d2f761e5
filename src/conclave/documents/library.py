"""Where collections are kept: SQLite files under conclave's home, or the run store's
PostgreSQL database when the store is PostgreSQL (`CONCLAVE_STORE_URL=postgresql://...`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conclave.documents.index import Library
from conclave.settings import Settings

if TYPE_CHECKING:
    from conclave.store.settings import StoreSettings

COLLECTIONS_FOLDER = "collections"


def open_library(
    settings: Settings | None = None, store_settings: StoreSettings | None = None
) -> Library:
    """The collections of this installation."""
    from conclave.store.settings import StoreSettings  # the store's package is heavy to load

    settings = settings or Settings()
    store_settings = store_settings or StoreSettings()
    url = store_settings.database_url(settings.home)
    if url.startswith("postgresql"):
        from conclave.documents.postgres_index import PostgresLibrary

        return PostgresLibrary(url)
    from conclave.documents.sqlite_index import SqliteLibrary

    return SqliteLibrary(settings.home / COLLECTIONS_FOLDER)
