"""Where collections are kept: SQLite files under conclave's home, or the run store's
PostgreSQL database when the store is PostgreSQL (`CONCLAVE_STORE_URL=postgresql://...`); or,
where a config's `documents.library` says, another folder or PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

from conclave.config import DocumentsOptions
from conclave.documents.index import Library, PassageIndex
from conclave.settings import Settings
from conclave.store.store_settings import StoreSettings

COLLECTIONS_FOLDER = "collections"


def open_library(
    settings: Settings | None = None, store_settings: StoreSettings | None = None
) -> Library:
    """The collections of this installation."""
    settings = settings or Settings()
    store_settings = store_settings or StoreSettings()
    url = store_settings.database_url(settings.home)
    if url.startswith("postgresql"):
        return library_at(url)
    return library_at(str(settings.home / COLLECTIONS_FOLDER))


def library_at(location: str) -> Library:
    """The collections kept at `location`: a postgresql:// URL, or a folder of SQLite files."""
    scheme = location.partition("://")[0]
    if scheme in {"postgres", "postgresql", "postgresql+psycopg"}:
        from conclave.documents.postgres_index import PostgresLibrary

        return PostgresLibrary("postgresql+psycopg://" + location.partition("://")[2])
    from conclave.documents.sqlite_index import SqliteLibrary

    return SqliteLibrary(Path(location).expanduser())


def open_collection(options: DocumentsOptions) -> PassageIndex:
    """The collection a config's `documents` block names; ConfigError when there is none."""
    library = library_at(options.library) if options.library else open_library()
    return library.open(options.collection)
