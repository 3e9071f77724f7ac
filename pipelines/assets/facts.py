"""The fact assets: incidents, changes, deployments and pull requests updated in the window, upserted from every
source by (source, source_id); unreadable rows go to rejected_records.

One step (the multi-asset `facts`) reads them all, every source at once (pipelines.reads), and lands each batch as
it completes: a night costs about its slowest source, not the sum of every source and kind.
"""

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import closing

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    ResourceParam,
    multi_asset,
)

from connectors.base import SourceBatch
from connectors.records import KINDS
from pipelines.assets.scope import FACTS_GROUP, Scope, open_scope, window_metadata
from pipelines.partitions import DAILY, SINGLE_RUN
from pipelines.reads import Read, read_all
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


COUNTS = ("read", "inserted", "updated", "unchanged", "rejected", "rejected_new", "same_time_conflicts")
KindDone = Callable[[str, dict[str, int]], None]


def _nothing(kind: str, counts: dict[str, int]) -> None:
    pass


def load_facts(scope: Scope, kinds: Sequence[str] = KINDS, kind_done: KindDone = _nothing) -> dict[str, dict[str, int]]:
    """Fetch `kinds` from every source for the window, every source at once (pipelines.reads), upsert the good
    records, keep the rejected ones; counts per kind. `kind_done(kind, counts)` is called once the last batch of
    `kind` has landed.

    `rejected` counts the rows rejected in the window, `rejected_new` those not already in rejected_records,
    `same_time_conflicts` the rows a source dropped for a later one with the same key and updated_at.
    """
    reads = [Read(source, kind, scope.warehouse.get_cursor(source.name, kind))
             for source in scope.sources for kind in kinds if kind in source.kinds]  # fmt: skip
    counts = {kind: dict.fromkeys(COUNTS, 0) for kind in kinds}
    left = Counter(read.kind for read in reads)
    for kind in kinds:
        if not left[kind]:
            kind_done(kind, counts[kind])
    with closing(read_all(reads, scope.start, scope.end)) as batches:
        for read, batch in batches:
            land(scope, read, batch, counts[read.kind])
            left[read.kind] -= 1
            if not left[read.kind]:
                kind_done(read.kind, counts[read.kind])
    return counts


def land(scope: Scope, read: Read, batch: SourceBatch, counts: dict[str, int]) -> None:
    """Upsert the batch's records, keep its rejected rows, then record how far the source has read."""
    result = scope.warehouse.upsert_facts(read.kind, batch.good)
    counts["rejected_new"] += scope.warehouse.write_rejected(read.kind, batch.rejected, source=read.source.name)
    record_read(scope, read.source.name, read.kind, read.cursor, batch)  # only once its records have landed
    counts["read"] += batch.read
    counts["rejected"] += len(batch.rejected)
    counts["same_time_conflicts"] += batch.same_time_conflicts
    counts["inserted"] += result.inserted
    counts["updated"] += result.updated
    counts["unchanged"] += result.unchanged


def record_read(scope: Scope, source: str, kind: str, cursor: str | None, batch: SourceBatch) -> None:
    """Keep in sync_state how far the source has read `kind` (its cursor) and the windows it has covered."""
    stored = scope.warehouse.get_covered(source, kind)
    covered = stored
    if batch.covered is not None:
        covered = coverage_text(with_window(coverage_from_text(stored), *batch.covered))
    new_cursor = batch.cursor if batch.cursor is not None else cursor
    if new_cursor != cursor or covered != stored:
        scope.warehouse.set_cursor(source, kind, new_cursor, covered)


@multi_asset(
    name="facts",
    specs=[AssetSpec(kind, group_name=FACTS_GROUP, description=f"Canonical {kind.replace('_', ' ')} updated in the "
                     "partition's day, upserted by (source, source_id) from every configured source; unreadable rows "
                     "go to rejected_records.") for kind in KINDS],
    check_specs=[AssetCheckSpec("rejected_share", asset=kind, description="Share of rows read that were rejected, "
                                f"warning above {REJECTED_SHARE_WARN:.0%}") for kind in KINDS],
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    can_subset=True,
)  # fmt: skip
def facts(
    context: AssetExecutionContext,
    scorecard: ScorecardConfigResource,
    warehouse: WarehouseResource,
    progress: ResourceParam[ProgressReporter],
):
    """Every record kind from every source in one step, the sources read at once: each kind is reported done to
    `progress` as its last batch lands."""
    kinds = [kind for kind in KINDS if AssetKey(kind) in context.selected_asset_keys]
    progress.step_started("facts")
    with open_scope(context, scorecard, warehouse) as scope:
        counts = load_facts(scope, kinds, lambda kind, done: progress.step_done(kind, **done))
    for kind in kinds:
        sources = ", ".join(source.name for source in scope.sources if kind in source.kinds)
        yield MaterializeResult(asset_key=kind, metadata={**counts[kind], **window_metadata(scope), "sources": sources},
                                check_results=selected_checks(context, kind, counts[kind]))  # fmt: skip


def selected_checks(context: AssetExecutionContext, kind: str, counts: dict[str, int]) -> list[AssetCheckResult]:
    """The rejected_share result of `kind`, unless the run left that check out."""
    check = rejected_share_check(kind, counts["read"], counts["rejected"])
    return [check] if AssetCheckKey(AssetKey(kind), check.check_name) in context.selected_asset_check_keys else []
