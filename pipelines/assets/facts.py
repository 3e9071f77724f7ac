"""The fact assets: incidents, changes, deployments and pull requests updated in the window, upserted from every
source by (source, source_id); unreadable rows go to rejected_records.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    ResourceParam,
    asset,
)

from connectors.base import SourceBatch
from connectors.records import KINDS
from pipelines.assets.scope import FACTS_GROUP, Scope, open_scope, window_metadata
from pipelines.partitions import DAILY, SINGLE_RUN
from pipelines.resources import ProgressReporter, ScorecardConfigResource, WarehouseResource
from scoring.completeness import coverage_from_text, coverage_text, with_window

REJECTED_SHARE_WARN = 0.05  # the rejected_share check warns above this share of the rows read


def rejected_share_check(kind: str, read: int, rejected: int) -> AssetCheckResult:
    share = rejected / read if read else 0.0
    return AssetCheckResult(
        asset_key=kind,
        check_name="rejected_share",
        passed=share <= REJECTED_SHARE_WARN,
        severity=AssetCheckSeverity.WARN,
        metadata={"rejected": rejected, "read": read, "share": round(share, 4), "threshold": REJECTED_SHARE_WARN},
        description=f"{rejected} of {read} rows read were rejected (warn above {REJECTED_SHARE_WARN:.0%})",
    )


def load_facts(scope: Scope, kind: str) -> dict[str, int]:
    """Fetch `kind` from every source for the window, upsert the good records, keep the rejected ones.

    `rejected` counts the rows rejected in the window, `rejected_new` those not already in rejected_records,
    `same_time_conflicts` the rows a source dropped for a later one with the same key and updated_at.
    """
    counts = {"read": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0, "rejected_new": 0,
              "same_time_conflicts": 0}
    for source in scope.sources:
        cursor = scope.warehouse.get_cursor(source.name, kind)
        batch = source.fetch(kind, scope.start, scope.end, cursor)
        result = scope.warehouse.upsert_facts(kind, batch.good)
        counts["rejected_new"] += scope.warehouse.write_rejected(kind, batch.rejected, source=source.name)
        record_read(scope, source.name, kind, cursor, batch)  # only once its records have landed
        counts["read"] += batch.read
        counts["rejected"] += len(batch.rejected)
        counts["same_time_conflicts"] += batch.same_time_conflicts
        counts["inserted"] += result.inserted
        counts["updated"] += result.updated
        counts["unchanged"] += result.unchanged
    return counts


def record_read(scope: Scope, source: str, kind: str, cursor: str | None, batch: SourceBatch) -> None:
    """Keep in sync_state how far the source has read `kind` (its cursor) and the windows it has covered."""
    stored = scope.warehouse.get_covered(source, kind)
    covered = stored
    if batch.covered is not None:
        covered = coverage_text(with_window(coverage_from_text(stored), *batch.covered))
    new_cursor = batch.cursor if batch.cursor is not None else cursor
    if new_cursor != cursor or covered != stored:
        scope.warehouse.set_cursor(source, kind, new_cursor, covered)


def fact_asset(kind: str):
    @asset(
        name=kind,
        group_name=FACTS_GROUP,
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN,
        check_specs=[AssetCheckSpec("rejected_share", asset=kind, description="Share of rows read that were "
                                    f"rejected, warning above {REJECTED_SHARE_WARN:.0%}")],  # fmt: skip
        description=f"Canonical {kind.replace('_', ' ')} updated in the partition's day, upserted by (source, "
        "source_id) from every configured source; unreadable rows go to rejected_records.",
    )
    def _facts(
        context: AssetExecutionContext,
        scorecard: ScorecardConfigResource,
        warehouse: WarehouseResource,
        progress: ResourceParam[ProgressReporter],
    ) -> MaterializeResult:
        progress.step_started(kind)
        with open_scope(context, scorecard, warehouse) as scope:
            counts = load_facts(scope, kind)
        progress.step_done(kind, **counts)
        return MaterializeResult(
            metadata={**counts, **window_metadata(scope), "sources": ", ".join(s.name for s in scope.sources)},
            check_results=[rejected_share_check(kind, counts["read"], counts["rejected"])],
        )

    return _facts


FACT_ASSETS = [fact_asset(kind) for kind in KINDS]
