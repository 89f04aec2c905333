"""The run layer: what a run around Alembic's commands adds, for any application.

History with checksums and timings, the lock, backups, guards, validate, status, rehearse, the web page, the
command line and the Python API. It builds on the DuckDB layer (``ddl``) and knows nothing of CCDash, which
configures it through an ``Application``.
"""
