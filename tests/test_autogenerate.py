"""``alembic revision --autogenerate`` and ``alembic check`` against a DuckDB file and a model."""

from __future__ import annotations

import textwrap

import pytest
from conftest import Project

MATCHING_MODEL = """
import sqlalchemy as sa

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(200), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("active", sa.Boolean, server_default=sa.true()),
    sa.Column("score", sa.Float(53), server_default="0"),
    sa.Column("balance", sa.Numeric(12, 2), nullable=False, server_default=sa.text("0")),
    sa.Column("kind", sa.String(20), server_default="member"),
    sa.Column("created_at", sa.DateTime, server_default=sa.func.current_timestamp()),
    sa.Column("seen_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.UniqueConstraint("email", name="uq_users_email"),
    sa.CheckConstraint("length(email) > 3", name="ck_users_email"),
)
sa.Index("ix_users_name", users.c.name)

posts = sa.Table(
    "posts",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", name="fk_posts_user"), nullable=False),
    sa.Column("title", sa.String, nullable=False),
    sa.Column("body", sa.Text),
    sa.Column("tags", sa.JSON),
    sa.Column("published", sa.Date),
)
sa.Index("ix_posts_user_published", posts.c.user_id, posts.c.published, unique=True)
"""


def _use_model(project: Project, model: str) -> None:
    (project.root / "models.py").write_text(textwrap.dedent(model))
    (project.root / "env.py").write_text(
        "from alembic import context\n\nfrom ccdash_alembic.runtime.environment import run\n"
        "from models import metadata\n\n"
        "run(context, metadata)\n"
    )


def _create_from_model(project: Project) -> None:
    script = (
        "import sqlalchemy as sa, ccdash_alembic, sys\n"
        "sys.path.insert(0, '.')\n"
        "from models import metadata\n"
        f"engine = sa.create_engine('duckdb:///{project.db}')\n"
        "metadata.create_all(engine)\n"
    )
    project.db.parent.mkdir(parents=True, exist_ok=True)
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", script], cwd=project.root, check=True)


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(
            "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
            "sa.Table('t', metadata, sa.Column('id', sa.Integer, primary_key=True),"
            " sa.Column('name', sa.String(50)))\n",
            id="simplest",
        ),
        pytest.param(MATCHING_MODEL, id="keys-indexes-defaults"),
    ],
)
def test_check_reports_nothing_on_a_matching_database(project: Project, model: str) -> None:
    _use_model(project, model)
    _create_from_model(project)
    result = project.alembic("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_check_fails_when_the_database_differs(project: Project) -> None:
    _use_model(project, MATCHING_MODEL)
    _create_from_model(project)
    with project.connect() as connection:
        connection.execute("DROP INDEX ix_users_name")
    result = project.alembic("check")
    assert result.returncode != 0
    assert "add_index" in result.stdout + result.stderr


def test_autogenerate_writes_the_operations_and_they_apply(project: Project) -> None:
    old = "import sqlalchemy as sa\nmetadata = sa.MetaData()\n" + (
        "sa.Table('t', metadata, sa.Column('id', sa.Integer, primary_key=True), sa.Column('gone', sa.Integer),"
        " sa.Column('n', sa.Integer))\n"
        "sa.Table('old', metadata, sa.Column('id', sa.Integer, primary_key=True))\n"
    )
    _use_model(project, old)
    _create_from_model(project)
    assert project.alembic("stamp", "base").returncode == 0
    _use_model(
        project,
        MATCHING_MODEL.replace(
            "\nposts",
            "\nsa.Table('t', metadata, sa.Column('id', sa.Integer,"
            " primary_key=True), sa.Column('n', sa.BigInteger),"
            " sa.Column('added', sa.String))\nposts",
        ),
    )

    result = project.alembic("revision", "--autogenerate", "-m", "sync model")
    assert result.returncode == 0, result.stderr
    [revision] = list(project.versions.glob("*_sync_model.py"))
    text = revision.read_text()
    for expected in (
        "op.create_table('users'",
        "sa.UniqueConstraint('email', name='uq_users_email')",
        "sa.CheckConstraint('length(email) > 3', name='ck_users_email')",
        "op.create_index('ix_users_name', 'users', ['name']",
        "op.create_table('posts'",
        "sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_posts_user')",
        "op.add_column('t', sa.Column('added', sa.String()",
        "op.drop_column('t', 'gone')",
        "op.alter_column('t', 'n'",
        "type_=sa.BigInteger()",
        "op.drop_table('old')",
    ):
        assert expected in text, expected

    result = project.alembic("upgrade", "head")
    assert result.returncode == 0, result.stderr
    result = project.alembic("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.rows("SELECT data_type FROM duckdb_columns() WHERE table_name = 't' AND column_name = 'n'") == [
        ("BIGINT",)
    ]

    assert project.alembic("downgrade", "base").returncode == 0
    assert project.rows("SELECT table_name FROM duckdb_tables() ORDER BY 1") == [
        ("alembic_version",),
        ("migration_history",),
        ("old",),
        ("schema_version",),
        ("t",),
    ]


BEFORE_MODEL = """
import sqlalchemy as sa

metadata = sa.MetaData()
owners = sa.Table("owners", metadata, sa.Column("id", sa.Integer, primary_key=True))
items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer),
    sa.Column("code", sa.String(20)),
    sa.Column("qty", sa.Integer),
    sa.Column("old", sa.String),
    sa.CheckConstraint("qty >= 0", name="ck_items_qty"),
)
sa.Index("ix_items_code", items.c.code)
children = sa.Table("children", metadata, sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id")))
sa.Table("retired", metadata, sa.Column("id", sa.Integer, primary_key=True))
"""

AFTER_MODEL = """
import sqlalchemy as sa

metadata = sa.MetaData()
owners = sa.Table("owners", metadata, sa.Column("id", sa.Integer, primary_key=True))
items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("owners.id", name="fk_items_owner")),
    sa.Column("code", sa.String(20)),
    sa.Column("qty", sa.BigInteger),
    sa.Column("added", sa.Boolean),
    sa.UniqueConstraint("code", name="uq_items_code"),
    sa.CheckConstraint("qty >= 1", name="ck_items_qty"),
)
children = sa.Table("children", metadata, sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id")))
sa.Table("fresh", metadata, sa.Column("id", sa.Integer, primary_key=True))
"""


def test_autogenerate_detects_every_kind_of_change_on_existing_tables(project: Project) -> None:
    _use_model(project, BEFORE_MODEL)
    _create_from_model(project)
    with project.connect() as connection:
        connection.execute("INSERT INTO owners VALUES (1), (2)")
        connection.execute("INSERT INTO items VALUES (1, 1, 'a', 3, 'x'), (2, 2, 'b', 4, 'y')")
        connection.execute("INSERT INTO children VALUES (1), (2)")
    assert project.alembic("stamp", "base").returncode == 0
    _use_model(project, AFTER_MODEL)

    result = project.alembic("revision", "--autogenerate", "-m", "evolve")
    assert result.returncode == 0, result.stderr
    [revision] = list(project.versions.glob("*_evolve.py"))
    text = revision.read_text()
    for expected in (
        "op.create_table('fresh'",
        "op.drop_table('retired')",
        "op.add_column('items', sa.Column('added', sa.Boolean()",
        "op.drop_column('items', 'old')",
        "type_=sa.BigInteger()",
        "op.drop_index(op.f('ix_items_code'), table_name='items')",
        "op.create_unique_constraint('uq_items_code', 'items', ['code'])",
        "op.create_foreign_key('fk_items_owner', 'items', 'owners', ['owner_id'], ['id'])",
        "op.drop_constraint('ck_items_qty', 'items', type_='check')",  # the name create_all gave it
        "op.create_check_constraint('ck_items_qty', 'items', 'qty >= 1')",
        # the downgrade drops what the upgrade adds by the names it gives them, which the layer keeps
        "op.drop_constraint('fk_items_owner', 'items', type_='foreignkey')",
        "op.drop_constraint('uq_items_code', 'items', type_='unique')",
    ):
        assert expected in text, expected

    for command in (["upgrade", "head"], ["check"], ["downgrade", "base"], ["upgrade", "head"], ["check"]):
        result = project.alembic(*command)
        assert result.returncode == 0, (command, result.stdout + result.stderr)
    assert project.rows("SELECT id, owner_id, code, qty FROM items ORDER BY id") == [(1, 1, "a", 3), (2, 2, "b", 4)]
    assert project.rows("SELECT count(*) FROM children") == [(2,)]


LINKED_MODEL = """
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("owners", metadata, sa.Column("id", sa.Integer, primary_key=True))
sa.Table(
    "pairs",
    metadata,
    sa.Column("a", sa.Integer, primary_key=True),
    sa.Column("b", sa.String(10), primary_key=True),
)
sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer{owner_fk}),
    sa.Column("pair_a", sa.Integer),
    sa.Column("pair_b", sa.String(10)),{pair_fk}
)
"""
OWNER_FK = ', sa.ForeignKey("owners.id", name="fk_items_owner")'
PAIR_FK = '\n    sa.ForeignKeyConstraint(["pair_a", "pair_b"], ["pairs.a", "pairs.b"], name="fk_items_pair"),'


@pytest.mark.parametrize(
    ("kept", "dropped"),
    [
        pytest.param(
            {"owner_fk": "", "pair_fk": PAIR_FK},
            "op.drop_constraint(op.f('fk_items_owner'), 'items', type_='foreignkey')",
            id="single",
        ),
        pytest.param(
            {"owner_fk": OWNER_FK, "pair_fk": ""},
            "op.drop_constraint(op.f('fk_items_pair'), 'items', type_='foreignkey')",
            id="composite",
        ),
    ],
)
def test_a_foreign_key_dropped_from_the_model_is_dropped_by_the_revision(
    project: Project, kept: dict[str, str], dropped: str
) -> None:
    """The other key stays, every row stays, and the downgrade puts the dropped key back."""
    _use_model(project, LINKED_MODEL.format(owner_fk=OWNER_FK, pair_fk=PAIR_FK))
    _create_from_model(project)
    with project.connect() as connection:
        connection.execute("INSERT INTO owners VALUES (1), (2)")
        connection.execute("INSERT INTO pairs VALUES (1, 'x'), (2, 'y')")
        connection.execute("INSERT INTO items VALUES (1, 1, 1, 'x'), (2, 2, 2, 'y'), (3, NULL, NULL, NULL)")
    assert project.alembic("stamp", "base").returncode == 0
    _use_model(project, LINKED_MODEL.format(**kept))

    result = project.alembic("revision", "--autogenerate", "-m", "unlink")
    assert result.returncode == 0, result.stderr
    [revision] = list(project.versions.glob("*_unlink.py"))
    upgrade = revision.read_text().split("def downgrade")[0]
    assert dropped in upgrade  # by the name create_all gave it, which the layer kept

    keys = "SELECT constraint_text FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY' ORDER BY 1"
    rows = "SELECT * FROM items ORDER BY id"
    before_keys, before_rows = project.rows(keys), project.rows(rows)
    assert len(before_keys) == 2
    for command in (["upgrade", "head"], ["check"]):
        result = project.alembic(*command)
        assert result.returncode == 0, (command, result.stdout + result.stderr)
    [remaining] = project.rows(keys)
    assert remaining in before_keys
    assert project.rows(rows) == before_rows

    assert project.alembic("downgrade", "-1").returncode == 0
    assert project.rows(keys) == before_keys
    assert project.rows(rows) == before_rows
