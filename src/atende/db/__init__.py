"""Database access: the engine, sessions, the embedded PostgreSQL and migrations."""
