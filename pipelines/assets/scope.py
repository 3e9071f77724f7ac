"""What every asset step opens first: the config and its sources (the pre-flight), the warehouse, the window.

The warehouse is the hand-over between assets: no asset output goes through an I/O manager.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import pandas as pd
from dagster import AssetExecutionContext

from connectors.base import Source
from pipelines import clock
from pipelines.config import Config
from pipelines.incremental import next_periods
from pipelines.resources import ScorecardConfigResource, WarehouseResource
from scoring.completeness import common_coverage, coverage_from_text, period_completeness
from scoring.periods import utc
from warehouse import Warehouse

FACTS_GROUP, SCORECARD_GROUP = "facts", "scorecard"


@dataclass
class Scope:
    """What every asset step opens first: config and sources (the pre-flight), warehouse, window."""

    config: Config
    sources: list[Source]
    warehouse: Warehouse
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def as_of(self) -> pd.Timestamp:
        """The instant the run computes as of: its window's end, capped at now. The same run gives the same rows."""
        return min(self.end, clock.now())

    @cached_property
    def coverage(self) -> pd.DataFrame | None:
        """The stretches of time every configured source has read all of its kinds for (sync_state.covered);
        None when no source reads records (then every period that has ended is complete)."""
        feeds = [coverage_from_text(self.warehouse.get_covered(source.name, kind))
                 for source in self.sources for kind in source.kinds]  # fmt: skip
        return common_coverage(feeds)

    def completeness(self, periods: pd.DatetimeIndex, grain: str) -> pd.DataFrame:
        """period_start, period_end, complete, data_from and data_to of the `grain` periods starting at `periods`,
        as of this run (README "Complete periods")."""
        starts = pd.DatetimeIndex(periods)
        table = pd.DataFrame({"period_start": starts, "period_end": next_periods(starts, grain)})
        return period_completeness(table, self.coverage, self.as_of)


@contextmanager
def open_scope(
    context: AssetExecutionContext, scorecard: ScorecardConfigResource, warehouse: WarehouseResource
) -> Iterator[Scope]:
    config = scorecard.load()
    sources = scorecard.sources(config)  # a source that cannot run stops every step here, before any write
    window = context.partition_time_window
    with warehouse.connect(config) as connected:
        yield Scope(config, sources, connected, utc(window.start), utc(window.end))


def window_metadata(scope: Scope) -> dict[str, str]:
    return {"window_start": scope.start.isoformat(), "window_end": scope.end.isoformat()}
