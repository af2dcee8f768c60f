"""Alembic migrations on an empty PostgreSQL database: upgrade to head, down to base, up again;
the token roles migration (0004) with rows in it, on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
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


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_token_roles_migration_keeps_admins_and_users(backend, tmp_path):
    """0004 turns ``is_admin`` into a role (admin / user) and back; going down deletes the
    revoked and worker tokens (before 0004 they would be live users' tokens) and no other."""
    from sqlalchemy import text

    from server.core.db import _engine_for, downgrade_database, upgrade_database
    from server.core.settings import Settings

    if backend == "postgresql":
        url, drop = create_pg_database()
    else:
        url, drop = f"sqlite:///{tmp_path / 'kmine.db'}", (lambda: None)
    try:
        settings = Settings(database_url=url, data_dir=tmp_path)
        upgrade_database(settings, "0003")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO api_tokens (name, token_hash, is_admin, created_at) VALUES "
                              "('boss', 'h1', :yes, CURRENT_TIMESTAMP), ('anna', 'h2', :no, CURRENT_TIMESTAMP)"),
                         {"yes": True, "no": False})
        upgrade_database(settings)
        columns = {c["name"] for c in inspect(engine).get_columns("api_tokens")}
        assert {"role", "created_by", "last_used_at", "revoked_at"} <= columns and "is_admin" not in columns
        with engine.begin() as conn:
            assert conn.execute(text("SELECT name, role FROM api_tokens ORDER BY id")).all() == [("boss", "admin"), ("anna", "user")]
            conn.execute(text("INSERT INTO api_tokens (name, token_hash, role, created_at, created_by) VALUES "
                              "('gpu', 'h3', 'worker', CURRENT_TIMESTAMP, 1), ('gone', 'h4', 'user', CURRENT_TIMESTAMP, 1)"))
            conn.execute(text("UPDATE api_tokens SET revoked_at = CURRENT_TIMESTAMP WHERE name = 'gone'"))
        downgrade_database(settings, "0003")
        columns = {c["name"] for c in inspect(engine).get_columns("api_tokens")}
        assert "is_admin" in columns and not {"role", "created_by", "last_used_at", "revoked_at"} & columns
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, is_admin FROM api_tokens ORDER BY id")).all()
        assert [(name, bool(admin)) for name, admin in rows] == [("boss", True), ("anna", False)]
        upgrade_database(settings)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name, role FROM api_tokens ORDER BY id")).all() == [("boss", "admin"), ("anna", "user")]
        engine.dispose()
        _engine_for.cache_clear()
    finally:
        drop()
