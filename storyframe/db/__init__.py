"""Persistence: SQLModel tables, the engine, repositories and migrations."""
