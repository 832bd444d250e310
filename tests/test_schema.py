"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from saas.db import Base


def test_models_and_migrations_agree(migrated):
    engine = sa.create_engine(migrated)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration for: {diff}"


def test_every_tenant_table_starts_an_index_with_tenant_id(migrated):
    engine = sa.create_engine(migrated)
    inspector = sa.inspect(engine)
    for table in Base.metadata.sorted_tables:
        if "tenant_id" not in table.columns:
            continue
        assert not table.columns["tenant_id"].nullable, table.name
        leading = [i["column_names"][0] for i in inspector.get_indexes(table.name)]
        leading += [u["column_names"][0] for u in inspector.get_unique_constraints(table.name)]
        assert "tenant_id" in leading, f"{table.name} has no index that starts with tenant_id"
    engine.dispose()
