"""The warehouse: SQLAlchemy table definitions, idempotent writes and the BI views (documented in warehouse/README.md).

    from warehouse import Warehouse
    wh = Warehouse.connect("sqlite:///scorecard.db")     # or postgresql+psycopg://user@host/db
    result = wh.upsert_facts("deployments", good)         # UpsertResult(inserted, updated, unchanged)
"""

from warehouse.bulk import UpsertResult
from warehouse.core import Warehouse
from warehouse.errors import WarehouseError

__all__ = ["UpsertResult", "Warehouse", "WarehouseError"]
