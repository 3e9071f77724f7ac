"""Asset checks over the warehouse tables (the rejected-row share is checked inside the facts step, per kind)."""


import json

import pandas as pd
from dagster import AssetCheckResult, AssetChecksDefinition, AssetCheckSeverity, asset_check

from connectors.records import KINDS
from connectors.services import ENTITY, MAPPING_OF_SOURCE, UNMAPPED
from pipelines import clock
from pipelines.resources import ScorecardConfigResource, WarehouseResource
from pipelines.settings import metric_settings
from scoring.metrics import dangling_change_links
from scoring.scorecard import KPI_STATUSES

KEY = ["source", "source_id"]


def duplicate_keys(facts: pd.DataFrame) -> pd.DataFrame:
    """Rows whose (source, source_id) appears more than once."""
    return facts[facts.duplicated(KEY, keep=False)]


def unique_keys_check(kind: str) -> AssetChecksDefinition:
    @asset_check(asset=kind, name="unique_source_keys", description=f"No (source, source_id) twice in {kind}.")
    def _check(scorecard: ScorecardConfigResource, warehouse: WarehouseResource) -> AssetCheckResult:
        with warehouse.connect(scorecard.load()) as connected:
            facts = connected.read_facts(kind)
        duplicates = duplicate_keys(facts)
        keys = duplicates[KEY].drop_duplicates().head(5).astype(str)
        sample = (keys["source"] + "/" + keys["source_id"]).tolist()
        return AssetCheckResult(
            passed=duplicates.empty,
            metadata={"rows": len(facts), "duplicated_rows": len(duplicates), "examples": ", ".join(sample)},
        )

    return _check


def unmapped_check(kind: str) -> AssetChecksDefinition:
    @asset_check(asset=kind, name="unmapped_records", description=f"{kind} of a vendor entity (repo, PagerDuty "
                 "service, CI, component) no service in `services:` claims: kept with service `unmapped`, out of the "
                 "metrics. Map the entity to a service to count them.")  # fmt: skip
    def _check(scorecard: ScorecardConfigResource, warehouse: WarehouseResource) -> AssetCheckResult:
        with warehouse.connect(scorecard.load()) as connected:
            rows = len(connected.read_facts(kind))
            unmapped = connected.read_facts(kind, with_raw=True, service=UNMAPPED)
        entities = unmapped_entities(unmapped)
        listed = "; ".join(f"{row.source} {row.entity} ({row.records}: add it to services.<name>.{row.mapping})"
                           for row in entities.itertuples())  # fmt: skip
        return AssetCheckResult(
            passed=unmapped.empty,
            severity=AssetCheckSeverity.WARN,
            metadata={"rows": rows, "unmapped": len(unmapped), "by_source_and_entity": listed,
                      "examples": ", ".join((unmapped["source"] + "/" + unmapped["source_id"]).head(5))},  # fmt: skip
            description=f"{len(unmapped)} {kind} of entities no service claims: {listed}" if listed else None,
        )

    return _check


def unmapped_entities(unmapped: pd.DataFrame) -> pd.DataFrame:
    """Per source and vendor entity (the `entity` a connector kept in the record's raw; "(none)" without one), how
    many of the `unmapped` records (read with raw) it has, and the ServiceMapping field that maps it, most first."""
    entity = unmapped["raw"].map(lambda text: json.loads(text).get(ENTITY) if text else None, na_action="ignore")
    counted = (pd.DataFrame({"source": unmapped["source"], "entity": entity.fillna("(none)").astype(str)})
               .value_counts().rename("records").reset_index())  # fmt: skip
    counted["mapping"] = counted["source"].map(MAPPING_OF_SOURCE).fillna("?")
    return counted.sort_values(["records", "source", "entity"], ascending=[False, True, True], ignore_index=True)


def resolved_before_opened(incidents: pd.DataFrame) -> pd.DataFrame:
    opened = pd.to_datetime(incidents["opened_at"], utc=True)
    resolved = pd.to_datetime(incidents["resolved_at"], utc=True)
    return incidents[resolved.notna() & (resolved < opened)]


@asset_check(asset="incidents", name="opened_before_resolved",
             description="Every resolved incident has opened_at <= resolved_at.")  # fmt: skip
def incidents_opened_before_resolved(
    scorecard: ScorecardConfigResource, warehouse: WarehouseResource
) -> AssetCheckResult:
    with warehouse.connect(scorecard.load()) as connected:
        incidents = connected.read_facts("incidents")
    bad = resolved_before_opened(incidents)
    return AssetCheckResult(
        passed=bad.empty,
        metadata={"incidents": len(incidents), "out_of_order": len(bad),
                  "examples": ", ".join(bad["source_id"].astype(str).head(5))},  # fmt: skip
    )


@asset_check(asset="incidents", name="dangling_change_links",
             description="Incidents whose caused_by_change names no known change, or a change implemented after "
             "the incident opened: such a link does not hold; the change failure rate uses the window rule.")
def dangling_change_links_check(scorecard: ScorecardConfigResource, warehouse: WarehouseResource) -> AssetCheckResult:
    config = scorecard.load()
    with warehouse.connect(config) as connected:
        facts = {kind: connected.read_facts(kind) for kind in ("incidents", "changes", "deployments")}
    dangling = dangling_change_links(facts["incidents"], facts["changes"], facts["deployments"], as_of=clock.now(),
                                     settings=metric_settings(config))  # fmt: skip
    shown = dangling.head(5).astype(str)
    examples = (shown["source_id"] + " -> " + shown["caused_by_change"] + " (" + shown["reason"] + ")").tolist()
    return AssetCheckResult(
        passed=dangling.empty,
        severity=AssetCheckSeverity.WARN,
        metadata={"links": int(facts["incidents"]["caused_by_change"].notna().sum()), "dangling": len(dangling),
                  **{reason.replace(" ", "_"): int(n) for reason, n in dangling["reason"].value_counts().items()},
                  "examples": "; ".join(examples)},  # fmt: skip
        description=f"{len(dangling)} caused_by_change link(s) do not hold",
    )


def kpi_coverage_problems(kpi_scores: pd.DataFrame, kpi_ids: list[str]) -> pd.DataFrame:
    """(period_start, kpi_id, problem) for every configured KPI missing from a scored period, or without a value
    while its status is not no_data, or with an unknown status."""
    periods = kpi_scores[["period_start"]].drop_duplicates()
    expected = periods.merge(pd.DataFrame({"kpi_id": kpi_ids}), how="cross")
    merged = expected.merge(kpi_scores[["period_start", "kpi_id", "value", "status"]], how="left",
                            on=["period_start", "kpi_id"], indicator=True)  # fmt: skip
    problem = pd.Series(None, index=merged.index, dtype=object)
    problem[~merged["status"].isin(KPI_STATUSES)] = "unknown status"
    problem[merged["value"].isna() & merged["status"].ne("no_data")] = "no value but status is not no_data"
    problem[merged["_merge"] == "left_only"] = "not scored"
    return merged.assign(problem=problem).loc[problem.notna(), ["period_start", "kpi_id", "problem"]]


@asset_check(asset="kpi_scores", description="Every configured KPI has a row in every scored period: a value and "
             "a status, or status no_data.")  # fmt: skip
def every_kpi_scored(scorecard: ScorecardConfigResource, warehouse: WarehouseResource) -> AssetCheckResult:
    config = scorecard.load()
    with warehouse.connect(config) as connected:
        table = connected.read_table("kpi_scores")
    table = table[table["scorecard"] == config.scorecard.name]
    kpi_ids = [kpi.id for _, _, kpi in config.iter_kpis()]
    problems = kpi_coverage_problems(table, kpi_ids)
    shown = problems.head(5).astype(str)
    examples = (shown["period_start"] + " " + shown["kpi_id"] + ": " + shown["problem"]).tolist()
    return AssetCheckResult(
        passed=problems.empty,
        metadata={"periods": int(table["period_start"].nunique()), "kpis": len(kpi_ids),
                  "problems": len(problems), "examples": "; ".join(examples)},  # fmt: skip
    )


@asset_check(asset="node_scores", description="Reports roll-up coverage: the share of weight that had data.")
def rollup_coverage(scorecard: ScorecardConfigResource, warehouse: WarehouseResource) -> AssetCheckResult:
    config = scorecard.load()
    with warehouse.connect(config) as connected:
        nodes = connected.read_table("node_scores")
    nodes = nodes[nodes["scorecard"] == config.scorecard.name]
    top = nodes[nodes["node_type"] == "scorecard"].sort_values("period_start")
    coverage = pd.to_numeric(nodes["coverage"], errors="coerce")
    latest = top.iloc[-1] if len(top) else None
    return AssetCheckResult(
        passed=True,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "periods": int(top["period_start"].nunique()),
            "latest_period": str(latest["period_start"]) if latest is not None else "",
            "latest_scorecard_coverage": float(latest["coverage"]) if latest is not None else 0.0,
            "min_node_coverage": float(coverage.min()) if coverage.notna().any() else 0.0,
            "nodes_without_data": int((coverage == 0).sum()),
        },
    )


CHECKS = [
    *(unique_keys_check(kind) for kind in KINDS),
    *(unmapped_check(kind) for kind in KINDS),
    incidents_opened_before_resolved,
    dangling_change_links_check,
    every_kpi_scored,
    rollup_coverage,
]
