"""The `scorecard` command line: the README's JSON shapes, exit codes and one-line errors.

Figures for tests/data (October 2026, month grain):
- production deployments: checkout D1, D2 (success), D4 (failure); search D5 (success); D3 is staging.
  deployment_frequency: checkout 2, search 1, all 3.
- change failure: D4 by its own status; D1 because sev1 incident I1 opens 30 min after it (same service).
  I2 is sev3 (no failure), I3 is rejected (resolved before opened). CFR: checkout 2/3, search 0/1, all 2/4 = 50%.
- KPIs: deploys 3 → (3-0)/(4-0) = 0.75, amber (>= threshold 2, < target 4);
  cfr 50 → (50-50)/(15-50) = 0, red; it_spend 102 → (102-110)/(100-110) = 0.8, amber, improving from 106.
- Roll-up: delivery = (0.75 + 0) / 2 = 0.375; spend = 0.8;
  scorecard = (0.8 * 1 + 0.375 * 3) / 4 = 0.48125.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from connectors.simulator.generate import DatasetSpec, generate_dataset, service_names
from pipelines.cli import app
from pipelines.clock import NOW_ENV
from pipelines.config import read_config

DATA = Path(__file__).parent / "data"
RECORDS = ["--incidents", str(DATA / "incidents.csv"), "--deployments", str(DATA / "deployments.csv")]
WINDOW = ["--from", "2026-09-01", "--to", "2026-10-31", "--as-of", "2026-11-15"]
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def by_key(rows, **match):
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def test_metrics_json_follows_the_product_shape():
    result = run("metrics", *RECORDS, *WINDOW, "--grain", "month", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert set(rows[0]) == {"metric", "service", "grain", "period_start", "period_end", "value", "unit",
                            "sample_size"}
    october = dict(period_start="2026-10-01T00:00:00Z")
    assert by_key(rows, metric="deployment_frequency", service="all", **october)["value"] == 3
    assert by_key(rows, metric="deployment_frequency", service="checkout", **october)["value"] == 2
    cfr = by_key(rows, metric="change_failure_rate", service="all", **october)
    assert (cfr["value"], cfr["unit"], cfr["sample_size"]) == (50.0, "percent", 4)
    assert by_key(rows, metric="change_failure_rate", service="checkout", **october)["value"] == pytest.approx(
        200 / 3)
    september_cfr = by_key(rows, metric="change_failure_rate", service="all", period_start="2026-09-01T00:00:00Z")
    assert (september_cfr["value"], september_cfr["sample_size"]) == (None, 0)
    assert by_key(rows, metric="mttr", service="checkout", **october)["period_end"] == "2026-11-01T00:00:00Z"


def test_metrics_warns_about_rejected_rows_on_stderr_and_goes_on():
    result = run("metrics", *RECORDS, *WINDOW, "--format", "json")
    assert result.exit_code == 0
    assert "incidents.csv line 4: resolved_at: before opened_at" in result.stderr
    json.loads(result.stdout)


def test_metrics_warns_about_a_malformed_csv_line_and_uses_the_good_rows(tmp_path):
    """A deployment line with a field too many (line 3) is named on stderr; D1 and D2 still count."""
    path = tmp_path / "deployments.csv"
    row = "github,{id},checkout,production,a,2026-10-0{day}T10:00:00Z,success\n"
    path.write_text("source,source_id,service,environment,sha,deployed_at,status\n" + row.format(id="D1", day=1)
                    + row.format(id="BAD", day=2).replace("success", "success,x") + row.format(id="D2", day=3))
    result = run("metrics", "--deployments", str(path), *WINDOW, "--metric", "deployment_frequency",
                 "--service", "all", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"warning: 1 rejected rows in {path}",
                                          "  deployments.csv line 3: line has 8 fields, the header has 7"]
    assert result.stdout.splitlines()[-1].endswith(",2.0,count,2")


def test_metrics_csv_and_filters():
    result = run("metrics", *RECORDS, *WINDOW, "--format", "csv", "--metric", "deployment_frequency",
                 "--service", "all")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "metric,service,grain,period_start,period_end,value,unit,sample_size"
    assert lines[1:] == [
        "deployment_frequency,all,month,2026-09-01T00:00:00Z,2026-10-01T00:00:00Z,0.0,count,0",
        "deployment_frequency,all,month,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,3.0,count,3",
    ]


def test_metrics_table_is_plain_text_when_piped():
    result = run("metrics", *RECORDS, *WINDOW, "--metric", "deployment_frequency", "--service", "checkout")
    assert result.exit_code == 0
    assert "\x1b[" not in result.stdout
    assert "deployment_frequency" in result.stdout and "checkout" in result.stdout


def test_score_json_follows_the_product_shape():
    result = run("score", "--config", str(DATA / "mini_scorecard.yaml"), "--values", str(DATA / "values.csv"),
                 *RECORDS, *WINDOW, "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"kpis", "nodes"}
    october = dict(period_start="2026-10-01T00:00:00Z")
    deploys = by_key(payload["kpis"], kpi_id="deploys", **october)
    assert (deploys["value"], deploys["performance"], deploys["status"]) == (3.0, 0.75, "amber")
    cfr = by_key(payload["kpis"], kpi_id="cfr", **october)
    assert (cfr["value"], cfr["performance"], cfr["status"]) == (50.0, 0.0, "red")
    spend = by_key(payload["kpis"], kpi_id="it_spend", **october)
    assert (spend["performance"], spend["status"], spend["trend"], spend["change"]) == (0.8, "amber", "improving",
                                                                                        -4.0)
    assert by_key(payload["kpis"], kpi_id="cfr", period_start="2026-09-01T00:00:00Z")["status"] == "no_data"
    top = by_key(payload["nodes"], node_type="scorecard", **october)
    assert top["score"] == pytest.approx(0.48125, abs=1e-4)  # printed to 4 decimals
    assert top["coverage"] == 1.0
    delivery_september = by_key(payload["nodes"], node_id="delivery", period_start="2026-09-01T00:00:00Z")
    assert (delivery_september["score"], delivery_september["coverage"]) == (0.0, 0.5)
    assert {n["node_type"] for n in payload["nodes"]} == {"objective", "perspective", "scorecard"}


def test_score_from_values_alone_is_the_pilot_mode(tmp_path):
    values = tmp_path / "values.csv"
    values.write_text("kpi_id,value\nit_spend,100\ndeploys,9\ncfr,\n")
    result = run("score", "--config", str(DATA / "mini_scorecard.yaml"), "--values", str(values), "--format",
                 "json", "--as-of", "2026-11-15")
    assert result.exit_code == 0, result.output
    kpis = {k["kpi_id"]: k for k in json.loads(result.stdout)["kpis"]}
    assert {k: v["status"] for k, v in kpis.items()} == {"it_spend": "green", "deploys": "blue", "cfr": "no_data"}
    assert kpis["deploys"]["period_start"] == "2026-11-01T00:00:00Z"


def test_score_table_shows_the_tree():
    result = run("score", "--config", str(DATA / "mini_scorecard.yaml"), "--values", str(DATA / "values.csv"),
                 *RECORDS, *WINDOW)
    assert result.exit_code == 0, result.output
    for text in ["Mini Scorecard", "Financial", "Spend within budget", "IT spend vs budget", "amber", "improving",
                 "48.1%"]:
        assert text in result.stdout
    assert "\x1b[" not in result.stdout  # piped: plain text, no colour codes
    spend = next(line for line in result.stdout.splitlines() if "IT spend vs budget" in line)
    assert "102.00%" in spend and "100.00%" in spend and "↑ improving (-4.00%)" in spend  # the change in its unit
    deploys = next(line for line in result.stdout.splitlines() if "Production deployments" in line)
    assert [cell.strip() for cell in deploys.split("│")[2:5]] == ["3", "4", "75.0%"]  # a count has no unit


def test_metrics_table_shows_each_value_with_its_unit():
    """The value column reads like the report: "2.00 h" (a no-break space), "50.00%", a count bare."""
    result = run("metrics", *RECORDS, "--from", "2026-10-01", "--to", "2026-10-31", "--as-of", "2026-11-15",
                 "--service", "all")
    assert result.exit_code == 0, result.output
    cells = {line.split("│")[1].strip(): line.split("│")[4].strip() for line in result.stdout.splitlines()
             if line.startswith("│")}
    assert (cells["mttr"], cells["mtbf"], cells["change_failure_rate"], cells["deployment_frequency"]) == (
        "2.00\u00a0h", "1,486.00\u00a0h", "50.00%", "3")
    assert cells["deployment_frequency_per_day"].endswith("/day") and cells["lead_time_for_changes"] == "—"


def test_score_csv_kpis_and_nodes():
    base = ["score", "--config", str(DATA / "mini_scorecard.yaml"), "--values", str(DATA / "values.csv"),
            *RECORDS, *WINDOW, "--format", "csv"]
    assert run(*base).stdout.splitlines()[0].startswith("kpi_id,kpi_name,")
    assert run(*base, "--nodes").stdout.splitlines()[0].startswith("node_type,node_id,")


def test_validate_accepts_the_example_config():
    result = run("validate", "--config", "scorecard.yaml")
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout


def test_validate_lists_every_problem_and_exits_1(tmp_path):
    config = tmp_path / "bad.yaml"
    text = (DATA / "mini_scorecard.yaml").read_text()
    text = text.replace("target: 100\n", "target: 110\n").replace("metric: change_failure_rate",
                                                                   "metric: change_fail_rate")
    config.write_text(text + "  colour: blue\n")
    result = run("validate", "--config", str(config))
    assert result.exit_code == 1
    errors = result.stderr
    assert "scorecard.perspectives[0].objectives[0].kpis[0].target" in errors
    assert "scorecard.perspectives[1].objectives[0].kpis[1].metric: unknown metric 'change_fail_rate'" in errors
    assert "scorecard.colour" in errors
    assert "Traceback" not in result.output


def test_validate_names_a_base_url_without_a_scheme(tmp_path):
    config = tmp_path / "scorecard.yaml"
    github = "sources:\n  github:\n    base_url: api.github.com\n"
    config.write_text((DATA / "mini_scorecard.yaml").read_text() + github)
    result = run("validate", "--config", str(config))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["sources.github.base_url: must be an http(s) URL with a host, got "
                                          "'api.github.com'", f"{config}: 1 problem(s)"]


@pytest.mark.parametrize("args, message", [
    (["metrics", "--incidents", "nope.csv"], "error: incidents file not found: nope.csv"),
    (["metrics", *RECORDS, "--from", "last tuesday"], "error: --from 'last tuesday' is not a date"),
    (["metrics", *RECORDS, "--from", "2026-10-02", "--to", "2026-10-01"], "is before --from"),
    (["metrics"], "error: give at least one of --incidents"),
    (["score", "--config", "missing.yaml", "--values", str(DATA / "values.csv")],
     "missing.yaml: config file not found"),
    (["validate", "--config", str(DATA / "incidents.csv")], "expected a mapping"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.exit_code in (1, 2) if args[0] == "validate" else result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


VALUES = ["--values", str(DATA / "values.csv")]
DATE_OPTIONS = [
    (["metrics", *RECORDS], "--from"), (["metrics", *RECORDS], "--to"), (["score", *VALUES], "--from"),
    (["score", *VALUES], "--to"),
    (["run"], "--from"), (["run"], "--to"), (["backfill", "--days", "3"], "--to"), (["backfill"], "--from"),
    (["show"], "--period"), (["report"], "--period"),
]


@pytest.mark.parametrize("value", ["01/11/2026", "Nov 3 2026", "2026-1-5", "20261105", "2026-02-30",
                                   "2026-11-05T10:00:00Z"])
@pytest.mark.parametrize("command, option", DATE_OPTIONS, ids=lambda v: v if isinstance(v, str) else v[0])
def test_every_date_option_takes_yyyy_mm_dd_only(command, option, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # show and report would read ./scorecard.yaml
    result = run(*command, option, value)
    assert (result.exit_code, result.stderr) == (2, f"error: {option} '{value}' is not a date (use YYYY-MM-DD)\n")


@pytest.mark.parametrize("command", [["metrics", *RECORDS], ["score", *VALUES]])
@pytest.mark.parametrize("value", ["15/11/2026", "2026-11-15 12:00", "2026-11-15T12:00:00", "tomorrow"])
def test_as_of_takes_a_day_or_an_instant_with_its_offset(command, value):
    result = run(*command, "--as-of", value)
    assert (result.exit_code, result.stderr) == (
        2, f"error: --as-of '{value}' is not an instant (use YYYY-MM-DD, or an ISO 8601 time with Z or an offset such "
           "as 2026-11-03T02:00:00Z)\n")


def test_as_of_an_instant_is_now_for_open_incidents(tmp_path):
    """sev1 opened 2026-10-05 10:00, still open: as of 12:30Z (= 14:30+02:00) it has been down 2.5 h of the day."""
    path = tmp_path / "incidents.csv"
    path.write_text("source,source_id,service,severity,opened_at\npd,1,checkout,sev1,2026-10-05T10:00:00Z\n")
    values = {}
    for as_of in ("2026-10-05T12:30:00Z", "2026-10-05T14:30:00+02:00"):
        result = run("metrics", "--incidents", str(path), "--from", "2026-10-05", "--to", "2026-10-05", "--grain",
                     "day", "--as-of", as_of, "--metric", "availability", "--service", "all", "--format", "json")
        assert result.exit_code == 0, result.output
        values[as_of] = json.loads(result.stdout)[0]["value"]
    assert list(values.values()) == [pytest.approx(100 * 10 / 12.5)] * 2


@pytest.mark.parametrize("value", ["next tuesday", "2026-11-03T02:00:00", "03/11/2026"])
@pytest.mark.parametrize("command", [["metrics", *RECORDS], ["generate", "--out", "x"], ["run"]])
def test_a_bad_scorecard_now_is_one_line_naming_the_variable(command, value, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(NOW_ENV, value)
    result = run(*command)
    assert (result.exit_code, result.stderr) == (
        2, f"error: {NOW_ENV}='{value}' is not an instant (use YYYY-MM-DD, or an ISO 8601 time with Z or an offset "
           "such as 2026-11-03T02:00:00Z)\n")


@pytest.mark.parametrize("option, name, message", [
    ("--metric", "nope", "error: --metric 'nope': unknown metric (known: deployment_frequency, "),
    ("--service", "nope", "error: --service 'nope': unknown service in the records or the config "
                          "(known: all, checkout, search)"),
])
def test_metrics_names_an_unknown_metric_or_service_and_lists_the_known(option, name, message):
    result = run("metrics", *RECORDS, *WINDOW, option, "mttr" if option == "--metric" else "all", option, name)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith(message), result.stderr


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("scorecard ") and result.stdout.strip().split()[-1][0].isdigit()


def test_score_rejects_values_for_unknown_kpis(tmp_path):
    values = tmp_path / "values.csv"
    values.write_text("kpi_id,value\nit_spnd,100\n")
    result = run("score", "--config", str(DATA / "mini_scorecard.yaml"), "--values", str(values))
    assert result.exit_code == 2
    assert "kpi_id 'it_spnd' is not a KPI" in result.stderr


def test_score_with_invalid_config_says_the_first_problem_in_one_line(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text((DATA / "mini_scorecard.yaml").read_text().replace("target: 100\n", "target: 110\n"))
    result = run("score", "--config", str(config), "--values", str(DATA / "values.csv"))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: scorecard.perspectives[0].objectives[0].kpis[0]")


def test_generate_writes_the_data_set_and_manual_values(tmp_path, monkeypatch):
    monkeypatch.setenv(NOW_ENV, "2026-12-01T08:00:00Z")
    result = run("generate", "--out", str(tmp_path), "--days", "30", "--config", "scorecard.yaml")
    assert result.exit_code == 0, result.output
    for name in ["incidents.csv", "changes.csv", "deployments.csv", "pull_requests.csv", "values.csv"]:
        assert (tmp_path / name).stat().st_size > 0


def test_generate_without_services_writes_the_ten_demo_services(tmp_path, monkeypatch):
    monkeypatch.setenv(NOW_ENV, "2026-12-01T08:00:00Z")
    for folder, extra in (("default", []), ("ten", ["--services", "10"])):
        result = run("generate", "--out", str(tmp_path / folder), "--days", "20", *extra)
        assert result.exit_code == 0, result.output
    for kind in ("incidents", "changes", "deployments", "pull_requests"):
        assert (tmp_path / "default" / f"{kind}.csv").read_bytes() == (tmp_path / "ten" / f"{kind}.csv").read_bytes()
    expected = generate_dataset(DatasetSpec(seed=7, days=20, end=pd.Timestamp("2026-12-01", tz="UTC")))
    written = pd.read_csv(tmp_path / "default" / "deployments.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(written, expected["deployments"].astype(str), check_dtype=False)


def test_generate_services_writes_them_all_and_a_config_naming_each(tmp_path, monkeypatch):
    monkeypatch.setenv(NOW_ENV, "2026-12-01T08:00:00Z")
    config = tmp_path / "scorecard.yaml"
    result = run("generate", "--out", str(tmp_path / "data"), "--days", "30", "--services", "25",
                 "--config", "scorecard.yaml", "--write-config", str(config))
    assert result.exit_code == 0, result.output
    deployments = pd.read_csv(tmp_path / "data" / "deployments.csv", dtype=str, keep_default_na=False)
    names = set(service_names(25))
    assert names <= set(deployments["service"])
    written = read_config(config)
    assert set(written.services) == names
    assert written.services["checkout"] == read_config(Path("scorecard.yaml")).services["checkout"]  # kept as written
    assert written.services["service-25"].github_repos == ["acme/service-25"]
    assert run("validate", "--config", str(config)).stdout.endswith("25 services\n")


@pytest.mark.parametrize("command", ["generate", "simulate"])
@pytest.mark.parametrize("count", ["0", "-3", "1000000000"])
def test_a_bad_service_count_is_one_line(command, count, tmp_path):
    result = run(command, "--services", count, *(["--out", str(tmp_path / "out")] if command == "generate" else []))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"error: --services: the number of services must be between 1 and 10,000, not "
                             f"{int(count):,}\n")
    assert not (tmp_path / "out").exists()
