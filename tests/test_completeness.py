"""Complete, partial and running periods (README "Complete periods"): the rule, what the derived rows carry, what
`show`, the report, trends, escalations and coverage make of it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from demo_files import ROOT, cli, write_config
from test_bi import stamp_computed_at
from test_warehouse import ts

from pipelines.clock import NOW_ENV
from pipelines.config import read_config
from pipelines.views.scorecard import latest_period, period_covers
from scoring.completeness import (
    common_coverage,
    coverage_from_text,
    coverage_text,
    intervals_frame,
    period_completeness,
    with_window,
)
from scoring.escalation import escalations
from scoring.periods import period_table
from scoring.scorecard import kpi_table, score
from warehouse import Warehouse

NOW = "2024-04-02T06:00:00Z"


def months(first: str, end: str) -> pd.DataFrame:
    return period_table(ts(first), ts(end), "month")


def covered(*pairs: tuple[str, str]) -> pd.DataFrame:
    return intervals_frame([ts(a) for a, _ in pairs], [ts(b) for _, b in pairs])


# --- the rule ---------------------------------------------------------------------------------------------


def test_a_period_is_complete_when_ended_and_covered_from_its_first_day():
    table = period_completeness(months("2026-08-01", "2026-12-07"), covered(("2026-09-08", "2026-12-07")),
                                ts("2026-12-07"))  # fmt: skip
    rows = table.set_index(table["period_start"].dt.strftime("%Y-%m"))
    assert rows["complete"].to_dict() == {"2026-08": False, "2026-09": False, "2026-10": True, "2026-11": True,
                                          "2026-12": False}  # fmt: skip
    assert pd.isna(rows.loc["2026-08", "data_from"]) and pd.isna(rows.loc["2026-08", "data_to"])  # nothing read
    assert rows.loc["2026-09", "data_from"] == ts("2026-09-08")  # a backfill that began on the 8th
    assert rows.loc["2026-09", "data_to"] == ts("2026-10-01")
    assert (rows.loc["2026-12", "data_from"], rows.loc["2026-12", "data_to"]) == (ts("2026-12-01"), ts("2026-12-07"))


def test_without_sources_every_ended_period_is_complete():
    table = period_completeness(months("2026-10-01", "2026-12-07"), None, ts("2026-12-07T12:00:00Z"))
    assert list(table["complete"]) == [True, True, False]
    assert list(table["data_from"]) == list(table["period_start"])
    assert table["data_to"].iloc[-1] == ts("2026-12-07T12:00:00Z")


def test_every_source_must_cover_the_period_and_a_gap_makes_it_partial():
    vendor = covered(("2026-09-01", "2026-12-07"))
    nightly_with_a_missed_day = covered(("2026-09-01", "2026-11-10"), ("2026-11-11", "2026-12-07"))
    common = common_coverage([vendor, nightly_with_a_missed_day])
    assert common.equals(nightly_with_a_missed_day)
    table = period_completeness(months("2026-09-01", "2026-12-01"), common, ts("2026-12-07"))
    assert list(table["complete"]) == [True, True, False]
    assert table["data_from"].iloc[-1] == ts("2026-11-11")  # the latest stretch: after the gap
    assert common_coverage([vendor, covered()]).empty  # a source that has read nothing covers nothing


def test_read_windows_merge_and_round_trip_through_sync_state_text():
    stretch = with_window(with_window(covered(), ts("2026-09-02"), ts("2026-09-03")), ts("2026-09-01"),
                          ts("2026-09-02"))  # fmt: skip
    assert stretch.equals(covered(("2026-09-01", "2026-09-03")))  # touching windows are one stretch
    assert coverage_from_text(coverage_text(stretch)).equals(stretch)
    assert coverage_from_text(None).empty and coverage_from_text("not json").empty


@pytest.mark.parametrize(
    ("row", "label"),
    [
        ({"complete": True}, ""),
        ({"complete": None}, ""),  # scored from a file: nothing known, nothing claimed
        ({"complete": False, "data_from": "2026-12-01", "data_to": "2026-12-07"}, "running: 6 of 31 days"),
        ({"complete": False, "data_from": "2026-12-03", "data_to": "2026-12-07"},
         "running: 4 of 31 days, data from 2026-12-03"),
        ({"complete": False, "data_from": "2026-09-08", "data_to": "2026-10-01"}, "partial: data from 2026-09-08"),
        ({"complete": False, "data_from": None, "data_to": None}, "partial: no data loaded for it"),
    ],
)
def test_period_labels_say_what_a_period_covers(row, label):
    start = "2026-12-01" if str(row.get("data_to", "")).startswith("2026-12") else "2026-09-01"
    end = "2027-01-01" if start == "2026-12-01" else "2026-10-01"
    full = {"period_start": ts(start), "period_end": ts(end),
            **{k: (ts(v) if isinstance(v, str) else v) for k, v in row.items()}}  # fmt: skip
    assert period_covers(full) == label


# --- scoring: trends, coverage, escalations ----------------------------------------------------------------


def example():
    return read_config(ROOT / "scorecard.yaml").scorecard


def test_trends_compare_complete_periods_only():
    config = example()
    kpi = kpi_table(config).iloc[0]["kpi_id"]
    values = pd.DataFrame({"kpi_id": kpi, "period_start": [ts("2026-09-01"), ts("2026-10-01"), ts("2026-11-01"),
                                                           ts("2026-12-01")], "value": [90.0, 100.0, 110.0, 5.0]})
    complete = pd.DatetimeIndex([ts("2026-10-01"), ts("2026-11-01")])  # September partial, December running
    kpis, _ = score(config, values, complete)
    rows = kpis[kpis["kpi_id"] == kpi]
    rows = rows.set_index(rows["period_start"].dt.strftime("%Y-%m"))
    assert rows["change"].isna().tolist() == [True, True, False, True]  # Oct's previous (Sept) is partial
    assert rows.loc["2026-11", "change"] == 10.0 and rows.loc["2026-11", "trend"] is not None
    assert pd.isna(rows.loc["2026-12", "trend"])  # 5 against 110 is missing days, not a collapse
    everything, _ = score(config, values)  # without completeness (a values file): every period compares
    assert everything.loc[everything["kpi_id"] == kpi, "change"].notna().sum() == 3


def test_coverage_is_the_share_of_kpi_weight_with_data_weighted_through_the_tree():
    config = example()
    table = kpi_table(config)
    assert len(table) == 17
    # One KPI in each of three objectives of different perspectives: every perspective but one has "data".
    chosen = table.drop_duplicates("perspective_id").head(3)["kpi_id"].tolist()
    values = pd.DataFrame({"kpi_id": chosen, "period_start": ts("2026-11-01"), "value": 1.0})
    _, nodes = score(config, values)
    top = nodes[nodes["node_type"] == "scorecard"].iloc[0]
    expected = _weighted_share(config, set(chosen))
    assert top["coverage"] == pytest.approx(expected)
    assert top["coverage"] < 0.3 and top["kpis_scored"] == 3  # 3 of 17 KPIs: never read as most of the scorecard


def _weighted_share(config, scored: set[str]) -> float:
    """The share of KPI weight with data, by hand: perspective share × objective share × KPI share."""
    total = 0.0
    perspectives = sum(p.weight for p in config.perspectives)
    for perspective in config.perspectives:
        objectives = sum(o.weight for o in perspective.objectives)
        for objective in perspective.objectives:
            kpis = sum(k.weight for k in objective.kpis)
            for kpi in objective.kpis:
                if kpi.id in scored:
                    total += perspective.weight / perspectives * objective.weight / objectives * kpi.weight / kpis
    return total


def test_escalations_skip_partial_and_running_periods():
    config = example()
    kpi = kpi_table(config).iloc[0]
    bad = kpi["baseline"] - (kpi["target"] - kpi["baseline"])  # far short of the threshold: red
    values = pd.DataFrame({"kpi_id": kpi["kpi_id"], "period_start": [ts("2026-10-01"), ts("2026-11-01")],
                           "value": [kpi["target"], bad]})  # fmt: skip
    kpis, _ = score(config, values)
    kpis["complete"] = kpis["period_start"].eq(ts("2026-10-01"))  # November still running
    assert escalations(kpis, config, ts("2026-11-01")).empty
    kpis["complete"] = True
    fired = escalations(kpis, config, ts("2026-11-01"))
    assert list(fired.loc[fired["kpi_id"] == kpi["kpi_id"], "rule"]) == ["red"]


# --- through the pipeline ---------------------------------------------------------------------------------


@pytest.fixture
def config_path(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(NOW_ENV, NOW)
    return write_config(tmp_path, data_dir)


def backfill(config: Path, first: str, last: str) -> str:
    result = cli("backfill", "--from", first, "--to", last, "--config", str(config))
    assert result.exit_code == 0, result.output
    return result.stdout


def stored(config: Path, table: str) -> pd.DataFrame:
    with Warehouse.open_existing(read_config(config).warehouse.url) as wh:
        return wh.read_table(table)


def test_a_backfill_starting_mid_month_marks_that_month_partial_until_it_is_read_whole(config_path):
    summary = backfill(config_path, "2024-03-08", "2024-04-01")
    assert "review periods   2024-03-01 partial: data from 2024-03-08; 2024-04-01 running: 1 of 30 days" in summary
    for table in ("metric_values", "kpi_scores", "node_scores"):
        rows = stored(config_path, table)
        march = rows[rows["period_start"] == ts("2024-03-01")]
        assert not march["complete"].any() and set(march["data_from"]) == {ts("2024-03-08")}, table
        april = rows[rows["period_start"] == ts("2024-04-01")]
        assert not april["complete"].any() and set(april["data_to"]) == {ts("2024-04-02")}, table
    sync = stored(config_path, "sync_state").set_index("kind")
    assert json.loads(sync.loc["deployments", "covered"]) == [[ts("2024-03-08").isoformat(),
                                                               ts("2024-04-02").isoformat()]]  # fmt: skip
    shown = cli("show", "--config", str(config_path))
    assert "period starting 2024-03-01 (partial: data from 2024-03-08)" in shown.output
    kpis = stored(config_path, "kpi_scores")
    assert kpis.loc[kpis["period_start"] == ts("2024-04-01"), "trend"].isna().all()  # running: no trend

    # Reading only the first days computes March as of their end (README "Same run, same rows"): still running.
    backfill(config_path, "2024-03-01", "2024-03-07")
    assert "period starting 2024-03-01 (running: 7 of 31 days)" in cli("show", "--config", str(config_path)).output
    backfill(config_path, "2024-03-01", "2024-04-01")  # March read whole, as of April: complete
    kpis = stored(config_path, "kpi_scores")
    march = kpis[kpis["period_start"] == ts("2024-03-01")]
    assert march["complete"].all() and set(march["data_from"]) == {ts("2024-03-01")}
    shown = cli("show", "--config", str(config_path))
    assert "period starting 2024-03-01:" in shown.output and "partial" not in shown.output


def test_a_missed_nightly_day_leaves_its_month_partial(config_path):
    backfill(config_path, "2024-03-01", "2024-03-10")
    backfill(config_path, "2024-03-12", "2024-04-01")  # 2024-03-11 never read
    nodes = stored(config_path, "node_scores")
    march = nodes[nodes["period_start"] == ts("2024-03-01")]
    assert not march["complete"].any() and set(march["data_from"]) == {ts("2024-03-12")}


def test_show_prints_the_running_period_labelled_when_none_is_complete(config_path, monkeypatch):
    monkeypatch.setenv(NOW_ENV, "2024-03-10T06:00:00Z")
    backfill(config_path, "2024-03-05", "2024-03-09")
    shown = cli("show", "--config", str(config_path))
    assert "period starting 2024-03-01 (running: 5 of 31 days, data from 2024-03-05)" in shown.output


def test_show_gives_the_tables_period_in_every_format_and_history_with_all(config_path):
    backfill(config_path, "2024-03-01", "2024-04-01")
    as_json = json.loads(cli("show", "--config", str(config_path), "--format", "json").output)
    assert {row["period_start"] for row in as_json["kpis"]} == {"2024-03-01T00:00:00Z"}
    assert {row["complete"] for row in as_json["kpis"]} == {True}
    assert {row["period_start"] for row in as_json["nodes"]} == {"2024-03-01T00:00:00Z"}
    as_csv = cli("show", "--config", str(config_path), "--format", "csv").output
    assert set(pd.read_csv(pd.io.common.StringIO(as_csv))["period_start"]) == {"2024-03-01T00:00:00Z"}
    history = json.loads(cli("show", "--config", str(config_path), "--format", "json", "--all").output)
    assert {row["period_start"] for row in history["kpis"]} == {"2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z"}
    running = [row for row in history["kpis"] if row["period_start"] == "2024-04-01T00:00:00Z"]
    assert {row["complete"] for row in running} == {False}


def test_the_latest_complete_period_is_what_the_views_show(config_path):
    backfill(config_path, "2024-03-08", "2024-04-01")
    with Warehouse.open_existing(read_config(config_path).warehouse.url) as wh:
        stamp_computed_at(wh, NOW)  # as a run at NOW stamps them: the views judge "ended" by computed_at
    kpis = stored(config_path, "kpi_scores")
    periods = stored(config_path, "scorecard_periods").set_index("period_start")
    # No complete period: the latest ended one (partial) is shown, exactly as `show` and the report pick it.
    assert latest_period(kpis, ts(NOW)) == ts("2024-03-01")
    assert periods.loc[ts("2024-03-01"), "periods_ago"] == 0 and not periods.loc[ts("2024-03-01"), "complete"]
    latest = stored(config_path, "scorecard_latest")
    assert set(latest["period_start"]) == {ts("2024-03-01")} and set(latest["data_from"]) == {ts("2024-03-08")}
