"""The one error type the warehouse raises for problems a user can fix (URL, schema version, bad frames)."""

from __future__ import annotations


class WarehouseError(Exception):
    """A one-line, secret-free message about the warehouse: what is wrong and where."""
