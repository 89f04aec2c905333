"""The names constraints are created with, which DuckDB forgets, kept by the layer and reported by reflection.

Each test reads the names back through SQLAlchemy's inspector on the real file, and checks DuckDB's own catalog
still has only its generated names, so what is reported comes from the layer.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from conftest import Project, digest, run_in_duckdb11

from ccdash_alembic import alembic_internals as internals
from ccdash_alembic.ddl import catalog, census

REGISTRY = catalog.CONSTRAINT_NAMES


@contextmanager
def _inspect(db: Path) -> Iterator[sa.Inspector]:
    engine = sa.create_engine(f"duckdb:///{db}")
    try:
        with engine.connect() as connection:
            yield sa.inspect(connection)
    finally:
        engine.dispose()


def _names(db: Path, table: str) -> dict[str, Any]:
    """Every constraint name reflection reports for ``table``."""
    with _inspect(db) as inspector:
        return {
            "pk": inspector.get_pk_constraint(table)["name"],
            "fk": sorted(fk["name"] for fk in inspector.get_foreign_keys(table)),
            "unique": sorted(u["name"] for u in inspector.get_unique_constraints(table)),
            "check": sorted(c["name"] for c in inspector.get_check_constraints(table)),
        }


def _duckdb_names(db: Path) -> list[str]:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        rows = connection.execute(
            "SELECT constraint_name FROM duckdb_constraints() WHERE constraint_type <> 'NOT NULL' ORDER BY 1"
        ).fetchall()
    finally:
        connection.close()
    return [r[0] for r in rows]


def _has_registry(db: Path) -> bool:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        return catalog.has_table(connection, REGISTRY)
    finally:
        connection.close()


def _model(metadata: sa.MetaData) -> None:
    sa.Table("owners", metadata, sa.Column("id", sa.Integer), sa.PrimaryKeyConstraint("id", name="pk_owners"))
    sa.Table(
        "items",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer),
        sa.Column("code", sa.String(10)),
        sa.Column("qty", sa.Integer),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], name="fk_items_owner"),
        sa.UniqueConstraint("code", name="uq_items_code"),
        sa.CheckConstraint("qty >= 0", name="ck_items_qty"),
    )


def test_create_all_keeps_every_kind_of_name_and_drop_all_forgets_them(tmp_path: Path) -> None:
    db = tmp_path / "model.db"
    metadata = sa.MetaData()
    _model(metadata)
    engine = sa.create_engine(f"duckdb:///{db}")
    metadata.create_all(engine)
    engine.dispose()

    assert _names(db, "owners")["pk"] == "pk_owners"
    assert _names(db, "items") == {
        "pk": "items_id_pkey",  # unnamed in the model: DuckDB's name, as before
        "fk": ["fk_items_owner"],
        "unique": ["uq_items_code"],
        "check": ["ck_items_qty"],
    }
    # DuckDB itself still has only its own names
    assert "fk_items_owner" not in _duckdb_names(db) and "items_owner_id_id_fkey" in _duckdb_names(db)
    with _inspect(db) as inspector:
        assert inspector.get_table_names() == ["items", "owners"]  # the names' table is no user's
    engine = sa.create_engine(f"duckdb:///{db}")
    with engine.connect() as connection:
        assert sorted(count.name for count in census.take(connection).values()) == ["items", "owners"]

    metadata.drop_all(engine)
    engine.dispose()
    assert not _has_registry(db)  # it went with the last name


def test_a_database_without_named_constraints_gets_no_table_for_names(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    metadata = sa.MetaData()
    sa.Table("t", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("u", sa.Integer, unique=True))
    engine = sa.create_engine(f"duckdb:///{db}")
    metadata.create_all(engine)
    metadata.drop_all(engine)
    engine.dispose()
    assert not _has_registry(db)


def test_a_naming_conventions_names_are_the_ones_kept() -> None:
    metadata = sa.MetaData(naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"})
    table = sa.Table("t", metadata, sa.Column("a", sa.Integer), sa.UniqueConstraint("a"))
    dialect = sa.create_engine("duckdb://").dialect
    [unique] = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    assert internals.constraint_name(unique, dialect) == "uq_t_a"
    assert internals.constraint_name(table.primary_key, dialect) is None


MODEL = """
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("owners", metadata, sa.Column("id", sa.Integer, primary_key=True))
sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer),
    sa.Column("qty", sa.{qty_type}),{fk}
)
"""
FK = '\n    sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], name="fk_items_owner"),'


def _use_model(project: Project, **parts: str) -> None:
    (project.root / "models.py").write_text(textwrap.dedent(MODEL.format(**parts)))
    (project.root / "env.py").write_text(
        "from alembic import context\n\nfrom ccdash_alembic.runtime.environment import run\n"
        "from models import metadata\n\n"
        "run(context, metadata)\n"
    )


def _linked(project: Project) -> None:
    """Revision 1 creates the tables (the key named inline), revision 2 fills them."""
    project.write_revision(
        "20250101000001",
        None,
        """
        op.create_table("owners", sa.Column("id", sa.Integer, primary_key=True))
        op.create_table(
            "items",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("owner_id", sa.Integer),
            sa.Column("qty", sa.Integer),
            sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], name="fk_items_owner"),
        )
        """,
        'op.drop_table("items")\nop.drop_table("owners")',
        message="tables",
    )
    project.write_revision(
        "20250101000002",
        "20250101000001",
        "op.execute('INSERT INTO owners VALUES (1), (2)')\n"
        "op.execute('INSERT INTO items VALUES (1, 1, 5), (2, 2, 6), (3, NULL, 7)')",
        message="rows",
    )


ROWS = "SELECT * FROM items ORDER BY id"


def test_autogenerate_drops_a_key_by_the_name_a_revision_gave_it_and_the_round_trip_keeps_rows(
    project: Project,
) -> None:
    _use_model(project, qty_type="Integer", fk=FK)
    _linked(project)
    assert project.alembic("upgrade", "head").returncode == 0
    assert _names(project.db, "items")["fk"] == ["fk_items_owner"]
    assert project.alembic("check").returncode == 0  # the model and the database agree, names and all

    _use_model(project, qty_type="Integer", fk="")
    result = project.alembic("revision", "--autogenerate", "-m", "unlink")
    assert result.returncode == 0, result.stderr
    [revision] = project.versions.glob("*_unlink.py")
    upgrade, downgrade = revision.read_text().split("def downgrade")
    assert "op.drop_constraint(op.f('fk_items_owner'), 'items', type_='foreignkey')" in upgrade, upgrade
    assert "op.create_foreign_key(op.f('fk_items_owner'), 'items', 'owners', ['owner_id'], ['id'])" in downgrade

    before = project.rows(ROWS)
    for command in (["upgrade", "head"], ["check"]):
        result = project.alembic(*command)
        assert result.returncode == 0, (command, result.stdout + result.stderr)
    assert _names(project.db, "items")["fk"] == [] and project.rows(ROWS) == before
    assert not _has_registry(project.db)  # its name went with it, and the table with its last name

    assert project.alembic("downgrade", "-1").returncode == 0
    assert _names(project.db, "items")["fk"] == ["fk_items_owner"] and project.rows(ROWS) == before
    assert _has_registry(project.db)
    assert project.alembic("downgrade", "base").returncode == 0
    assert not _has_registry(project.db)  # dropping the table forgot its names


def test_a_rebuild_and_a_rename_keep_the_name(project: Project) -> None:
    _linked(project)
    project.write_revision(
        "20250101000003",
        "20250101000002",
        """
        op.create_unique_constraint("uq_items_qty", "items", ["qty"])
        op.alter_column("items", "qty", type_=sa.BigInteger)  # a rebuild: DuckDB cannot alter a keyed column
        op.alter_column("owners", "id", type_=sa.BigInteger)  # rebuilds items too, which references it
        op.rename_table("items", "things")
        op.alter_column("things", "qty", new_column_name="amount")
        """,
        """
        op.alter_column("things", "amount", new_column_name="qty")
        op.rename_table("things", "items")
        op.drop_constraint("uq_items_qty", "items", type_="unique")
        """,
        message="reshape",
    )
    project.log_plans()
    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert "rebuild change of items" in result.stderr and "rebuild change of owners" in result.stderr
    names = _names(project.db, "things")
    assert (names["fk"], names["unique"]) == (["fk_items_owner"], ["uq_items_qty"])
    assert "uq_items_qty" not in _duckdb_names(project.db)
    assert project.rows("SELECT id, owner_id, amount FROM things ORDER BY id") == [(1, 1, 5), (2, 2, 6), (3, None, 7)]
    assert project.rows(f"SELECT DISTINCT table_name FROM {REGISTRY}") == [("things",)]

    assert project.alembic("downgrade", "20250101000002").returncode == 0
    names = _names(project.db, "items")
    assert (names["fk"], names["unique"]) == (["fk_items_owner"], [])


def test_a_sql_script_keeps_the_names_and_drops_by_them(project: Project) -> None:
    _linked(project)
    project.write_revision(
        "20250101000003",
        "20250101000002",
        'op.create_unique_constraint("uq_items_qty", "items", ["qty"])\n'
        'op.drop_constraint("fk_items_owner", "items", type_="foreignkey")',  # found on the file's shadow copy
        message="swap",
    )
    assert project.alembic("upgrade", "20250101000002").returncode == 0
    script = project.alembic("upgrade", "20250101000002:head", "--sql")
    assert script.returncode == 0, script.stderr
    where = "WHERE (schema_name = current_schema() AND lower(table_name) = lower('items'))"
    assert script.stdout.count(f'DELETE FROM "{REGISTRY}" {where}') == 2
    assert "'UNIQUE (\"qty\")', 'uq_items_qty')" in script.stdout
    with project.connect() as connection:
        connection.execute(script.stdout)
    assert _names(project.db, "items")["unique"] == ["uq_items_qty"] and _names(project.db, "items")["fk"] == []


def test_a_file_written_by_duckdb_11_works_as_before_and_reading_it_creates_nothing(
    project: Project, duckdb11_python: Path
) -> None:
    project.db.parent.mkdir(parents=True)
    made = run_in_duckdb11(
        duckdb11_python,
        project.db,
        """
        con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        con.execute("INSERT INTO alembic_version VALUES ('20250101000002')")
        con.execute("CREATE TABLE owners (id INTEGER PRIMARY KEY)")
        con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, owner_id INTEGER, qty INTEGER,"
                    " CONSTRAINT fk_items_owner FOREIGN KEY (owner_id) REFERENCES owners (id))")
        con.execute("INSERT INTO owners VALUES (1)")
        con.execute("INSERT INTO items VALUES (1, 1, 5)")
        """,
    )
    assert made.returncode == 0, made.stderr
    _linked(project)
    before = digest(project.db)
    for command in (["current"], ["history"]):
        assert project.alembic(*command).returncode == 0
    assert project.migrate("status").returncode == 0
    assert digest(project.db) == before and not _has_registry(project.db)
    assert _names(project.db, "items")["fk"] == ["items_owner_id_id_fkey"]  # DuckDB's name: none was kept

    project.write_revision(
        "20250101000003",
        "20250101000002",
        'op.alter_column("items", "qty", type_=sa.BigInteger)\n'
        'op.drop_constraint("items_owner_id_id_fkey", "items", type_="foreignkey")\n'
        'op.create_foreign_key("fk_items_owner", "items", "owners", ["owner_id"], ["id"])',
        message="rename key",
    )
    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert _names(project.db, "items")["fk"] == ["fk_items_owner"]
    opened = run_in_duckdb11(
        duckdb11_python, project.db, f"print(con.execute('SELECT constraint_name FROM {REGISTRY}').fetchall())"
    )
    assert opened.returncode == 0 and "fk_items_owner" in opened.stdout, opened.stderr
    before = digest(project.db)
    assert project.alembic("current").returncode == 0 and project.migrate("status").returncode == 0
    assert digest(project.db) == before
