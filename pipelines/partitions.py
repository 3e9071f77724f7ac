"""The time partitions of every asset: one per UTC day, and a backfill of a range runs as one run."""

import os
import warnings

from dagster import BackfillPolicy, BetaWarning, DailyPartitionsDefinition

# BackfillPolicy is marked beta in Dagster 1.x; relying on it is deliberate (one run per backfilled range).
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")

PARTITIONS_START_ENV = "SCORECARD_PARTITIONS_START"
DEFAULT_PARTITIONS_START = "2024-01-01"

DAILY = DailyPartitionsDefinition(
    start_date=os.environ.get(PARTITIONS_START_ENV, DEFAULT_PARTITIONS_START), timezone="UTC"
)
SINGLE_RUN = BackfillPolicy.single_run()
