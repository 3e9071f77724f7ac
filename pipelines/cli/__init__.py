"""The `scorecard` command line (Typer) and its glue to the Dagster job."""

from pipelines.cli.app import app

__all__ = ["app"]
