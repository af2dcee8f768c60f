"""Alembic migrations on an empty PostgreSQL database: upgrade to head, down to base, up again."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from service_fixtures import create_pg_database  # noqa: E402  (tests/server/conftest.py)


def test_migrations_upgrade_and_downgrade_postgres(tmp_path):
    from server.core.db import _engine_for, downgrade_database, upgrade_database
    from server.core.settings import Settings

    url, drop = create_pg_database()
    try:
        settings = Settings(database_url=url, data_dir=tmp_path)
        upgrade_database(settings)
        engine = create_engine(url)
        tables = set(inspect(engine).get_table_names())
        assert {"datasets", "images", "masks", "splits", "split_members", "jobs", "models", "epoch_metrics",
                "pseudo_label_quality", "api_tokens", "alembic_version"} <= tables
        # The migrations build exactly the tables the models describe.
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from server.core.models import Base

        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        downgrade_database(settings, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade_database(settings)
        assert "jobs" in inspect(engine).get_table_names()
        engine.dispose()
        _engine_for.cache_clear()
    finally:
        drop()
