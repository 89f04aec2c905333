"""The DuckDB layer: Alembic on DuckDB for any project.

SQLAlchemy's dialect with reflection from DuckDB's catalog, Alembic's implementation, the rebuild planner, the
operations Alembic lacks and the autogenerate fixes. It knows nothing of the run layer (``runtime``) or of any
application; ``plugin`` registers it when Alembic starts.
"""
