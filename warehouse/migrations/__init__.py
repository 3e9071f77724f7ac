"""Alembic migrations of the warehouse schema (see README.md here). A package so they ship with it."""
