"""A vendor cannot hang, flood or poison a nightly run: each misbehaviour of tests/hostile.py, for each vendor.

Night one reads the simulator as it is; night two reads it through the hostile vendor. Night two must end within
a bounded time (the vendor's limits are set low, as a user may set them), fail with one line naming the source and
what the vendor did, and leave the warehouse exactly as night one left it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import hostile
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from connectors.simulator.history import build_history, service_mapping
from connectors.simulator.server import make_app, running, source_sections
from pipelines.cli import app
from pipelines.clock import NOW_ENV

END = pd.Timestamp("2026-11-01", tz="UTC")  # the simulator's history ends here (exclusive)
SERVICES = ("checkout", "payments", "search", "catalog")
VENDORS = ("github", "pagerduty", "jira", "servicenow")
DAYS = 10
NIGHT_ONE = "2026-10-30"
# Night two reads the whole history again (a backfill), so no listing ends at its first page for want of records.
NIGHT_TWO = ((END - pd.Timedelta(days=DAYS)).date().isoformat(), "2026-10-31")
LIMITS = {"max_pages": 40, "request_deadline_seconds": 0.5, "time_budget_minutes": 0.025, "max_body_mb": 1}
BOUND_SECONDS = 60  # a run that hangs would never end; these end in seconds (the budget is 1.5 s a step and source)
TOKENS = {"GITHUB_TOKEN": "ghp_FAKE_HOSTILE", "PAGERDUTY_TOKEN": "FAKE_PD_HOSTILE", "JIRA_EMAIL": "e2e@acme.test",
          "JIRA_TOKEN": "FAKE_JIRA_HOSTILE", "SN_USER": "e2e-user", "SN_PASSWORD": "FAKE_SN_HOSTILE"}
# What the one line says the vendor did, per misbehaviour.
SAID = {
    "endless_pages": "yet the vendor promises another: the listing does not advance; stopped",
    "drip": "no whole answer",  # within the deadline, or before the budget ran out
    "huge": "the answer is larger than 1 MB (limits.max_body_mb): not read",
    "redirect": "redirected to another host",
}
runner = CliRunner()


@pytest.fixture(scope="module")
def history():
    return build_history(end=END, seed=11, days=DAYS, services=SERVICES)


@pytest.fixture(autouse=True)
def _environment(monkeypatch):
    monkeypatch.setenv(NOW_ENV, (END + pd.Timedelta(hours=3)).isoformat())
    for name, token in TOKENS.items():
        monkeypatch.setenv(name, token)


def write_config(folder: Path, vendor: str, base_url: str, limits: dict | None = None) -> Path:
    """The mini scorecard fed by one vendor (`limits`: none, the defaults), into folder/warehouse.db."""
    config = yaml.safe_load((Path(__file__).parent / "data" / "mini_scorecard.yaml").read_text())
    mapping = service_mapping(SERVICES)
    section = source_sections(base_url, mapping)[vendor]
    config["sources"] = {vendor: {**section, **({"limits": limits} if limits else {})}}
    config["services"] = mapping
    config["warehouse"] = {"url": f"sqlite:///{folder / 'warehouse.db'}"}
    path = folder / "scorecard.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def night(config_path: Path, first: str, last: str | None = None):
    return runner.invoke(app, ["run", "--from", first, "--to", last or first, "--config", str(config_path)])


def warehouse_rows(folder: Path) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(f"sqlite:///{folder / 'warehouse.db'}")
    try:
        with engine.connect() as connection:
            names = sa.inspect(connection).get_table_names()
            return {name: pd.read_sql_table(name, connection) for name in names}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def night_one(history, tmp_path_factory):
    """vendor -> the folder of a warehouse after one clean night of that vendor (made once, copied by each case)."""
    made: dict[str, Path] = {}

    def warehouse(vendor: str) -> Path:
        if vendor not in made:
            folder = tmp_path_factory.mktemp(f"night-one-{vendor}")
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv(NOW_ENV, (END + pd.Timedelta(hours=3)).isoformat())
                for name, token in TOKENS.items():
                    patch.setenv(name, token)
                with running(history) as base_url:
                    result = night(write_config(folder, vendor, base_url), NIGHT_ONE)
            assert result.exit_code == 0, result.output
            made[vendor] = folder
        return made[vendor]

    return warehouse


@pytest.mark.parametrize("misbehaviour", hostile.MISBEHAVIOURS)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_hostile_vendor_stops_the_night_in_bounded_time_naming_it_and_the_warehouse_is_untouched(
    history, night_one, tmp_path, vendor, misbehaviour
):
    shutil.copy(night_one(vendor) / "warehouse.db", tmp_path / "warehouse.db")
    before = warehouse_rows(tmp_path)
    assert len(before["sync_state"]) > 0  # night one did land something to keep
    with hostile.serving(make_app(history), misbehaviour) as base_url:
        started = time.monotonic()
        result = night(write_config(tmp_path, vendor, base_url, LIMITS), *NIGHT_TWO)
        seconds = time.monotonic() - started
    assert seconds < BOUND_SECONDS
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: step "), result.stderr
    assert f"sources.{vendor}" in result.stderr and SAID[misbehaviour] in result.stderr, result.stderr
    assert all(token not in result.output for token in TOKENS.values() if "@" not in token and "user" not in token)
    after = warehouse_rows(tmp_path)
    assert after.keys() == before.keys()
    for table, rows in before.items():
        pd.testing.assert_frame_equal(after[table], rows, obj=table)


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_record_with_a_far_future_time_is_one_rejected_record_and_the_night_goes_on(
    history, night_one, tmp_path, vendor
):
    shutil.copy(night_one(vendor) / "warehouse.db", tmp_path / "warehouse.db")
    before = warehouse_rows(tmp_path)
    with hostile.serving(make_app(history), "far_future") as base_url:
        result = night(write_config(tmp_path, vendor, base_url, LIMITS), *NIGHT_TWO)
    assert result.exit_code == 0, result.output
    after = warehouse_rows(tmp_path)
    rejected = after["rejected_records"].merge(before["rejected_records"], how="left", indicator=True)
    rejected = rejected[rejected["_merge"] == "left_only"]
    assert len(rejected) >= 1 and set(rejected["source"]) == {vendor}
    assert rejected["reason"].str.startswith("timestamp out of range").all(), rejected["reason"].tolist()
    assert rejected["source_id"].notna().all()  # each names its record
    assert sync_state_moved(before, after, vendor)  # the night landed the rest and moved on


def sync_state_moved(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame], vendor: str) -> bool:
    mine = [frame[frame["source"] == vendor].reset_index(drop=True) for frame in (before["sync_state"],
                                                                                  after["sync_state"])]  # fmt: skip
    return not mine[0].equals(mine[1])


def test_the_harness_is_the_simulator_where_it_does_not_misbehave(history, tmp_path):
    """Every listing through the harness misbehaves; what is not a listing is the simulator's answer, so the
    pre-flight passes and a night gets as far as reading records (the failures above come from the listings)."""
    assert hostile.is_listing("GET", "/jira/rest/api/3/search/jql?jql=x", b"")
    assert not hostile.is_listing("GET", "/jira/rest/api/3/myself", b"")
    assert hostile.is_listing("GET", "/pagerduty/incidents?limit=100&offset=0", b"")
    assert not hostile.is_listing("GET", "/pagerduty/incidents?limit=1&time_zone=UTC", b"")
    assert hostile.is_listing("GET", "/servicenow/api/now/table/incident?sysparm_limit=1000", b"")
    assert not hostile.is_listing("GET", "/servicenow/api/now/table/cmdb_ci?sysparm_query=sys_idINa,b", b"")
    assert not hostile.is_listing("POST", "/github/graphql", b'{"query": "query Viewer { viewer { login } }"}')
