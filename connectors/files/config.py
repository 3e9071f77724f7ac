"""`sources.files`: canonical-record files (CSV or JSON lines) and a KPI values CSV, read instead of APIs."""

from __future__ import annotations

from scoring.config import Model, Text


class FilesConfig(Model):
    incidents: Text | None = None
    changes: Text | None = None
    deployments: Text | None = None
    pull_requests: Text | None = None
    values: Text | None = None  # manual KPI values: kpi_id,value[,period]
