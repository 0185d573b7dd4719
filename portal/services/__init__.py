"""The domain. Services take a SQLAlchemy ``Session`` first, do one thing, flush and never commit;
they never import Flask. The web views and the CLI call the same services."""
