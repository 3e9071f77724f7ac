"""The metric engine `scoring.metrics.derive_metrics` on tiny hand-built records.

Every figure is worked out by hand in the test's docstring. Unless a test says otherwise the grid is
three UTC days, Mon 2026-03-02 (D1), Tue 03-03 (D2) and Wed 03-04 (D3), with as_of at the end of D3,
the failure severities are sev1/sev2, the change failure window is 24 h and production is
`production`/`prod`. A cell is read as (value, sample_size), with None for a null value.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pytest import approx

from connectors.records import empty_frame, normalise_frame
from scoring.dictionary import METRICS
from scoring.metrics import METRIC_COLUMNS, MetricSettings, derive_metrics

D1, D2, D3 = "2026-03-02", "2026-03-03", "2026-03-04"
NO_DATA = (None, 0)
KINDS = ("incidents", "changes", "deployments", "pull_requests")


def records(kind: str, rows: list[dict]) -> pd.DataFrame:
    """Rows through the normaliser, as the engine gets them; source_id defaults to the row's position."""
    if not rows:
        return empty_frame(kind)
    raw = pd.DataFrame([{"source": "test", "source_id": f"{kind}-{n}"} | row for n, row in enumerate(rows)])
    good, rejected = normalise_frame(kind, raw)
    assert rejected.empty, rejected.to_dict("records")
    return good


def derive(
    incidents=(), changes=(), deployments=(), pull_requests=(), *, grain="day", start=D1, end="2026-03-05", as_of=None,
    **options,
) -> pd.DataFrame:
    """derive_metrics over the rows; as_of defaults to `end`, so every period has fully happened."""
    rows = dict(zip(KINDS, (incidents, changes, deployments, pull_requests), strict=True))
    frames = [records(kind, list(rows[kind])) for kind in KINDS]
    return derive_metrics(*frames, grain=grain, start=start, end=end, as_of=as_of or end, **options)


def cell(result: pd.DataFrame, metric: str, service: str = "api", period: str = D1) -> tuple[float | None, int]:
    row = result[
        (result["metric"] == metric)
        & (result["service"] == service)
        & (result["period_start"] == pd.Timestamp(period, tz="UTC"))
    ]
    assert len(row) == 1, (metric, service, period)
    value, size = row["value"].iloc[0], row["sample_size"].iloc[0]
    return (None if math.isnan(value) else value), size


def incident(service: str, opened: str, resolved: str | None = None, severity: str = "sev1", **extra) -> dict:
    return {"service": service, "severity": severity, "opened_at": opened, "resolved_at": resolved} | extra


def deployment(service: str, deployed: str, status: str = "success", environment: str = "production", **extra) -> dict:
    return {"service": service, "environment": environment, "deployed_at": deployed, "status": status} | extra


def change(service: str, implemented: str | None, outcome: str = "successful", kind: str = "normal", **extra) -> dict:
    return {"service": service, "implemented_at": implemented, "outcome": outcome, "type": kind} | extra


def pull_request(service: str, created: str, merged: str | None, first_commit: str | None = None, **extra) -> dict:
    return {"service": service, "created_at": created, "merged_at": merged, "first_commit_at": first_commit} | extra


def at(day: str, time: str) -> str:
    return f"{day}T{time}Z"


# ---------------------------------------------------------------------------------------------
# The shape of the result.


def test_result_is_a_complete_sorted_grid():
    """12 metrics x (api, web, all) x 3 days = 108 rows, whatever the records cover."""
    result = derive(incidents=[incident("web", at(D2, "10:00"), at(D2, "12:00"))],
                    deployments=[deployment("api", at(D1, "10:00"))])
    assert list(result.columns) == METRIC_COLUMNS
    assert len(result) == len(METRICS) * 3 * 3
    assert set(result["metric"]) == set(METRICS)
    assert result.groupby(["metric", "service"]).size().eq(3).all()
    assert set(result["service"]) == {"api", "web", "all"}
    assert result.equals(result.sort_values(["metric", "service", "period_start"], ignore_index=True))
    assert (result["period_end"] - result["period_start"] == pd.Timedelta(days=1)).all()
    assert (result["grain"] == "day").all()
    assert (result["unit"] == result["metric"].map({name: m.unit for name, m in METRICS.items()})).all()
    assert str(result["period_start"].dtype) == "datetime64[ns, UTC]"
    assert result["value"].dtype == "float64" and result["sample_size"].dtype == "int64"


def test_week_grain_is_iso_weeks_starting_monday():
    """[Wed 03-04, Mon 03-16) overlaps the weeks of Mon 03-02 and Mon 03-09; 03-16 is excluded (end exclusive).

    Week 03-02: deployments Tue 03-03 and Sun 03-08 23:59 -> 2, 2/7 per day. Week 03-09: Mon 00:00 -> 1.
    """
    result = derive(deployments=[deployment("api", at("2026-03-03", "12:00")),
                                 deployment("api", at("2026-03-08", "23:59")),
                                 deployment("api", at("2026-03-09", "00:00"))],
                    grain="week", start="2026-03-04", end="2026-03-16")
    starts = result.loc[(result["metric"] == "deployment_frequency") & (result["service"] == "api"), "period_start"]
    assert list(starts) == [pd.Timestamp("2026-03-02", tz="UTC"), pd.Timestamp("2026-03-09", tz="UTC")]
    assert (result["period_end"] - result["period_start"] == pd.Timedelta(days=7)).all()
    assert cell(result, "deployment_frequency", period="2026-03-02") == (2, 2)
    assert cell(result, "deployment_frequency_per_day", period="2026-03-02") == (approx(2 / 7), 2)
    assert cell(result, "deployment_frequency", period="2026-03-09") == (1, 1)


def test_month_grain_is_calendar_months():
    """[02-10, 03-02) overlaps February (28 days, ends 03-01) and March (31 days).

    February: 2 deployments -> 2/28 per day; March: 1 on 03-01 -> 1/31 per day.
    """
    result = derive(deployments=[deployment("api", at("2026-02-01", "00:00")),
                                 deployment("api", at("2026-02-28", "23:59")),
                                 deployment("api", at("2026-03-01", "00:00"))],
                    grain="month", start="2026-02-10", end="2026-03-02", as_of="2026-04-01")
    february = result[(result["metric"] == "deployment_frequency") & (result["period_start"].dt.month == 2)]
    assert (february["period_end"] == pd.Timestamp("2026-03-01", tz="UTC")).all()
    assert cell(result, "deployment_frequency_per_day", period="2026-02-01") == (approx(2 / 28), 2)
    assert cell(result, "deployment_frequency_per_day", period="2026-03-01") == (approx(1 / 31), 1)


def test_empty_range_gives_an_empty_typed_frame():
    result = derive(deployments=[deployment("api", at(D1, "10:00"))], start=D2, end=D2)
    assert result.empty
    assert list(result.columns) == METRIC_COLUMNS
    assert str(result["period_start"].dtype) == "datetime64[ns, UTC]"


def test_service_named_all_is_rejected():
    with pytest.raises(ValueError, match="'all'"):
        derive(deployments=[deployment("all", at(D1, "10:00"))])


def test_declared_services_get_rows_without_records():
    """`billing` has no records: it still gets its rows, with null values (it never deploys)."""
    result = derive(deployments=[deployment("api", at(D1, "10:00"))], services=["billing"])
    assert set(result["service"]) == {"api", "billing", "all"}
    assert cell(result, "deployment_frequency", "billing") == NO_DATA


# ---------------------------------------------------------------------------------------------
# Deployment frequency.


def test_deployment_frequency_counts_successful_production_deployments():
    """api D1: success to production and to `Production` count; failure, in_progress and staging do not -> 2.

    web D1: 1. all: 3. A day is 1 day long, so per day equals the count.
    D2: api deploys at all, so its empty day is 0 (a real zero), not null.
    """
    result = derive(deployments=[deployment("api", at(D1, "09:00")),
                                 deployment("api", at(D1, "10:00"), environment="Production"),
                                 deployment("api", at(D1, "11:00"), status="failure"),
                                 deployment("api", at(D1, "12:00"), environment="staging"),
                                 deployment("api", at(D1, "13:00"), status="in_progress"),
                                 deployment("web", at(D1, "09:00"), environment="prod")])
    assert cell(result, "deployment_frequency") == (2, 2)
    assert cell(result, "deployment_frequency", "web") == (1, 1)
    assert cell(result, "deployment_frequency", "all") == (3, 3)
    assert cell(result, "deployment_frequency_per_day", "all") == (approx(3.0), 3)
    assert cell(result, "deployment_frequency", period=D2) == (0, 0)


def test_an_inactive_deployment_succeeded_before_a_newer_one_replaced_it():
    """GitHub sets a successful deployment `inactive` when the next one goes live: both count -> 2.

    Lead time: the PR merged at 08:00 ships with the 09:00 deployment (now inactive) -> 1 h, not 4 h (api's
    history starts with a success the day before, so the PR is not merged before its first deployment).
    """
    result = derive(deployments=[deployment("api", "2026-03-01T12:00Z"),
                                 deployment("api", at(D1, "09:00"), status="inactive"),
                                 deployment("api", at(D1, "12:00"))],
                    pull_requests=[pull_request("api", created=at(D1, "07:00"), merged=at(D1, "08:00"),
                                                first_commit=at(D1, "08:00"))])
    assert cell(result, "deployment_frequency") == (2, 2)
    assert cell(result, "lead_time_for_changes") == (approx(1.0), 1)


def test_production_environment_names_are_configurable_and_case_insensitive():
    """With production_environments=("Live",): `live` and `LIVE` count, `production` no longer does -> 2."""
    result = derive(deployments=[deployment("api", at(D1, "09:00"), environment="live"),
                                 deployment("api", at(D1, "10:00"), environment="LIVE"),
                                 deployment("api", at(D1, "11:00"), environment="production")],
                    settings=MetricSettings(production_environments=("Live",)))
    assert cell(result, "deployment_frequency") == (2, 2)


def test_deployment_frequency_is_null_for_a_service_that_never_deploys_to_production():
    """`batch` has only an incident, `lab` only a staging deployment: no production deployments at all -> null."""
    result = derive(incidents=[incident("batch", at(D1, "10:00"), at(D1, "11:00"))],
                    deployments=[deployment("api", at(D1, "10:00")),
                                 deployment("lab", at(D1, "10:00"), environment="staging")])
    assert cell(result, "deployment_frequency", "batch") == NO_DATA
    assert cell(result, "deployment_frequency_per_day", "lab") == NO_DATA
    assert cell(result, "deployment_frequency", "all") == (1, 1)


def test_per_day_rate_uses_the_elapsed_part_of_the_current_period():
    """as_of D1 12:00: 2 deployments in 12 elapsed hours -> 4 per day; D2 and D3 have not begun -> null."""
    result = derive(deployments=[deployment("api", at(D1, "06:00")), deployment("api", at(D1, "11:00"))],
                    as_of=at(D1, "12:00"))
    assert cell(result, "deployment_frequency_per_day") == (approx(4.0), 2)
    assert cell(result, "deployment_frequency_per_day", period=D2) == NO_DATA
    assert cell(result, "deployment_frequency", period=D3) == NO_DATA


# ---------------------------------------------------------------------------------------------
# Lead time for changes.


def test_lead_time_is_the_median_from_first_commit_to_the_first_successful_deployment_after_merge():
    """api production successes at D1 10:00 and 12:00 (the 09:00 failure and 09:30 staging do not ship); api and
    web have a success on 03-01 12:00 as well, so no PR below is merged before its service's first deployment.

    PR1 first commit D1 00:00, merged 08:00 -> ships 10:00: 10 h.
    PR2 no first commit, created D1 06:00, merged 10:00 -> ships 10:00 (at its merge): 4 h (created_at fallback).
    PR3 first commit 03-01 22:00, merged D1 11:00 -> ships 12:00: 14 h.
    PR4 merged 13:00 has not shipped; PR5 is not merged. api D1: median(10, 4, 14) = 10 h over 3.
    web: PR6 first commit D1 07:00, merged 09:00, ships D2 09:00: 26 h, counted on D2 (the deployment's day).
    """
    result = derive(
        deployments=[deployment("api", "2026-03-01T12:00Z"),
                     deployment("web", "2026-03-01T12:00Z"),
                     deployment("api", at(D1, "09:00"), status="failure"),
                     deployment("api", at(D1, "09:30"), environment="staging"),
                     deployment("api", at(D1, "10:00")),
                     deployment("api", at(D1, "12:00")),
                     deployment("web", at(D2, "09:00"))],
        pull_requests=[pull_request("api", at(D1, "02:00"), at(D1, "08:00"), first_commit=at(D1, "00:00")),
                       pull_request("api", at(D1, "06:00"), at(D1, "10:00")),
                       pull_request("api", "2026-03-01T23:00Z", at(D1, "11:00"), first_commit="2026-03-01T22:00Z"),
                       pull_request("api", at(D1, "12:30"), at(D1, "13:00")),
                       pull_request("api", at(D1, "12:30"), None),
                       pull_request("web", at(D1, "08:00"), at(D1, "09:00"), first_commit=at(D1, "07:00"))])
    assert cell(result, "lead_time_for_changes") == (approx(10.0), 3)
    assert cell(result, "lead_time_for_changes", "web") == NO_DATA
    assert cell(result, "lead_time_for_changes", "web", D2) == (approx(26.0), 1)
    assert cell(result, "lead_time_for_changes", "all") == (approx(10.0), 3)
    assert cell(result, "lead_time_for_changes", "all", D2) == (approx(26.0), 1)


def test_a_pull_request_merged_before_the_services_first_deployment_is_counted_not_timed():
    """History starts with api's first production success on 2026-03-02 10:00. PR1, created 2025-01-01 00:00
    and merged 2025-01-02 (14 months earlier), shipped at some time nothing records: no lead time (the first
    deployment would give it 10,210 h), counted in January 2025, the month of its merge. PR2, created 03-02
    12:00 and merged 14:00, ships with the next success, 03-03 10:00: 22 h in March. web has no production
    success at all: its PR merged in March is counted too. ops merges nothing: null, not 0.
    """
    result = derive(deployments=[deployment("api", "2026-03-02T10:00Z"), deployment("api", "2026-03-03T10:00Z"),
                                 deployment("ops", "2026-03-02T11:00Z")],
                    pull_requests=[pull_request("api", "2025-01-01T00:00Z", "2025-01-02T00:00Z"),
                                   pull_request("api", "2026-03-02T12:00Z", "2026-03-02T14:00Z"),
                                   pull_request("web", "2026-03-02T06:00Z", "2026-03-02T07:00Z")],
                    grain="month", start="2025-01-01", end="2026-04-01", as_of="2026-03-05")
    january, march = "2025-01-01", "2026-03-01"
    assert cell(result, "lead_time_for_changes", period=january) == NO_DATA
    assert cell(result, "lead_time_for_changes", period=march) == (approx(22.0), 1)
    assert cell(result, "lead_time_for_changes", "all", march) == (approx(22.0), 1)
    assert cell(result, "lead_time_untimed_prs", period=january) == (1, 1)
    assert cell(result, "lead_time_untimed_prs", period=march) == (0, 0)
    assert cell(result, "lead_time_untimed_prs", "web", march) == (1, 1)
    assert cell(result, "lead_time_untimed_prs", "all", january) == (1, 1)
    assert cell(result, "lead_time_untimed_prs", "all", march) == (1, 1)
    assert cell(result, "lead_time_untimed_prs", "ops", march) == NO_DATA


def test_a_pull_request_merged_at_the_first_deployment_ships_with_it():
    """api's first success D1 10:00; a PR merged at 10:00 sharp ships with it (at or after its merge): 2 h.
    A success after as_of (D3 10:00, as_of D2) is not on record yet: web's PR merged D1 is untimed.
    """
    result = derive(deployments=[deployment("api", at(D1, "10:00")), deployment("web", at(D3, "10:00"))],
                    pull_requests=[pull_request("api", at(D1, "08:00"), at(D1, "10:00")),
                                   pull_request("web", at(D1, "08:00"), at(D1, "09:00"))],
                    as_of=D2)
    assert cell(result, "lead_time_for_changes") == (approx(2.0), 1)
    assert cell(result, "lead_time_untimed_prs") == (0, 0)
    assert cell(result, "lead_time_untimed_prs", "web") == (1, 1)


# ---------------------------------------------------------------------------------------------
# Change failure rate.


def test_change_failure_rate_counts_a_change_failed_by_its_own_outcome():
    """api D1 production deployments with a final status: success, failure, error, inactive (in_progress and the
    staging failure are no changes). Implemented change requests: successful, failed, backed_out, unknown
    (the failed one without implemented_at is no change). Failed: failure, error, failed, backed_out -> 4/8 = 50%.
    web: one successful deployment, 0/1. all pools the changes: 4/9.
    """
    result = derive(
        deployments=[deployment("api", at(D1, "01:00")),
                     deployment("api", at(D1, "02:00"), status="failure"),
                     deployment("api", at(D1, "03:00"), status="error"),
                     deployment("api", at(D1, "04:00"), status="inactive"),
                     deployment("api", at(D1, "05:00"), status="in_progress"),
                     deployment("api", at(D1, "06:00"), status="failure", environment="staging"),
                     deployment("web", at(D1, "06:00"))],
        changes=[change("api", at(D1, "07:00")),
                 change("api", at(D1, "08:00"), outcome="failed"),
                 change("api", at(D1, "09:00"), outcome="backed_out"),
                 change("api", at(D1, "10:00"), outcome="unknown"),
                 change("api", None, outcome="failed")])
    assert cell(result, "change_failure_rate") == (approx(50.0), 8)
    assert cell(result, "change_failure_rate", "all") == (approx(100 * 4 / 9), 9)
    assert cell(result, "change_failure_rate", period=D2) == NO_DATA


def test_explicit_cause_fails_a_change_whatever_the_severity_and_the_delay():
    """api deploys A (D1 10:00) and B (D2 10:00). A sev4 incident on D3 names A in caused_by_change.

    CFR D1: A failed -> 100% of 1; D2: B did not -> 0% of 1 (a real zero).
    """
    result = derive(incidents=[incident("api", at(D3, "10:00"), at(D3, "12:00"), "sev4", caused_by_change="A")],
                    deployments=[deployment("api", at(D1, "10:00"), source_id="A"),
                                 deployment("api", at(D2, "10:00"), source_id="B")])
    assert cell(result, "change_failure_rate") == (approx(100.0), 1)
    assert cell(result, "change_failure_rate", period=D2) == (approx(0.0), 1)


def test_explicit_cause_takes_precedence_over_the_window_rule():
    """api deploys A 10:00 and B 11:00; a sev1 incident at 11:30 names A. The window would pick B; the link
    wins: A failed, B did not -> 1/2 = 50%.
    """
    result = derive(incidents=[incident("api", at(D1, "11:30"), at(D1, "12:00"), caused_by_change="A")],
                    deployments=[deployment("api", at(D1, "10:00"), source_id="A"),
                                 deployment("api", at(D1, "11:00"), source_id="B")])
    assert cell(result, "change_failure_rate") == (approx(50.0), 2)
    assert cell(result, "deployment_frequency") == (2, 2)
    assert cell(result, "failed_deployment_recovery_time") == (approx(2.0), 1)


def test_window_rule_attributes_an_incident_to_the_latest_change_before_it_only():
    """D1: api deploys 10:00 and 11:00, sev1 incident at 12:00 -> only the 11:00 one failed: 50% of 2.
    D2: api deploys 10:00 and 11:00, sev2 incident at 10:30 -> the 10:00 one failed (the next change
    comes after the incident): 50% of 2. The incident is not counted twice.
    """
    result = derive(incidents=[incident("api", at(D1, "12:00"), at(D1, "13:00")),
                               incident("api", at(D2, "10:30"), at(D2, "13:00"), "sev2")],
                    deployments=[deployment("api", at(D1, "10:00"), source_id="A"),
                                 deployment("api", at(D1, "11:00"), source_id="B"),
                                 deployment("api", at(D2, "10:00"), source_id="C"),
                                 deployment("api", at(D2, "11:00"), source_id="D")])
    assert cell(result, "change_failure_rate") == (approx(50.0), 2)
    assert cell(result, "change_failure_rate", period=D2) == (approx(50.0), 2)
    assert cell(result, "failed_deployment_recovery_time") == (approx(2.0), 1)
    assert cell(result, "failed_deployment_recovery_time", period=D2) == (approx(3.0), 1)


def test_a_change_request_is_the_services_next_change_for_the_window_rule():
    """api deploys at 10:00, change request at 11:00, sev1 incident at 12:00 -> the change request failed."""
    result = derive(incidents=[incident("api", at(D1, "12:00"), at(D1, "13:00"))],
                    changes=[change("api", at(D1, "11:00"))],
                    deployments=[deployment("api", at(D1, "10:00"))])
    assert cell(result, "change_failure_rate") == (approx(50.0), 2)
    assert cell(result, "failed_deployment_recovery_time") == (approx(2.0), 1)


NEAR_MISSES = [
    incident("web", at(D1, "11:00"), at(D1, "12:00")),  # other service
    incident("api", at(D1, "11:00"), at(D1, "12:00"), "sev3"),  # not a failure severity by default
    incident("api", at(D2, "11:00"), at(D2, "12:00")),  # 25 h after the change, outside 24 h
    incident("api", at(D1, "09:00"), at(D1, "09:30")),  # before the change
]


@pytest.mark.parametrize(
    "settings, expected",
    [
        (MetricSettings(), 0.0),
        (MetricSettings(failure_severities=("SEV1", "sev2", "sev3")), 100.0),
        (MetricSettings(change_failure_window=pd.Timedelta(hours=26)), 100.0),
        (MetricSettings(failure_severities=("sev1", "sev3"), change_failure_window=pd.Timedelta(minutes=59)), 0.0),
    ],
    ids=["defaults", "sev3-is-a-failure", "26h-window", "sev3-but-59min-window"],
)
def test_window_rule_needs_same_service_failure_severity_and_window(settings, expected):
    """api deploys once at D1 10:00; the incidents all miss the rule under the defaults (see NEAR_MISSES).

    Counting sev3 as failure (any case) catches the sev3 one 1 h later, unless the window is 59 min; a 26 h
    window catches the one 25 h later.
    """
    result = derive(incidents=NEAR_MISSES, deployments=[deployment("api", at(D1, "10:00"))], settings=settings)
    assert cell(result, "change_failure_rate") == (approx(expected), 1)


def test_window_includes_its_end_and_the_next_change_takes_over_at_its_own_time():
    """api deploys A D1 10:00 and B D2 10:00. A sev1 incident opens D2 10:00: exactly 24 h after A, but at B's
    time, so it is B's (the latest change at or before it). Another opens D3 10:00, exactly 24 h after B: B's too.
    CFR: D1 0/1, D2 1/1.
    """
    result = derive(incidents=[incident("api", at(D2, "10:00"), at(D2, "11:00")),
                               incident("api", at(D3, "10:00"), at(D3, "11:00"))],
                    deployments=[deployment("api", at(D1, "10:00")), deployment("api", at(D2, "10:00"))])
    assert cell(result, "change_failure_rate") == (approx(0.0), 1)
    assert cell(result, "change_failure_rate", period=D2) == (approx(100.0), 1)


# ---------------------------------------------------------------------------------------------
# Time to restore and open incidents.


def test_mttr_mean_median_and_p90_over_failure_incidents_resolved_in_the_period():
    """api sev1/sev2 incidents of 1, 2, 3 and 10 h resolved on D1 (a 23 h sev3 one is no failure).

    mean 16/4 = 4; median 2.5; p90 at rank 0.9*3 = 2.7 -> 3 + 0.7*(10-3) = 7.9.
    all adds web's 6 h: 1, 2, 3, 6, 10 -> mean 4.4, median 3, p90 at rank 3.6 -> 6 + 0.6*4 = 8.4.
    """
    result = derive(incidents=[incident("api", at(D1, "00:00"), at(D1, "01:00")),
                               incident("api", at(D1, "02:00"), at(D1, "04:00"), "sev2"),
                               incident("api", at(D1, "05:00"), at(D1, "08:00")),
                               incident("api", at(D1, "10:00"), at(D1, "20:00")),
                               incident("api", at(D1, "00:00"), at(D1, "23:00"), "sev3"),
                               incident("web", at(D1, "03:00"), at(D1, "09:00"))])
    assert cell(result, "mttr") == (approx(4.0), 4)
    assert cell(result, "mttr_median") == (approx(2.5), 4)
    assert cell(result, "mttr_p90") == (approx(7.9), 4)
    assert cell(result, "mttr", "all") == (approx(4.4), 5)
    assert cell(result, "mttr_median", "all") == (approx(3.0), 5)
    assert cell(result, "mttr_p90", "all") == (approx(8.4), 5)


def test_open_incidents_are_counted_separately_and_mttr_waits_for_their_resolution():
    """as_of D3 12:00. api sev1 incidents: I1 D1 22:00 -> D2 02:00 (4 h), I2 D1 23:00 never resolved,
    I3 D3 01:00 resolved exactly at as_of (so still open). A sev3 one stays open too.

    mttr: D1 none resolved -> null; D2 I1 -> 4 h over 1; D3 none resolved by as_of -> null.
    open_failure_incidents at each period's end (D3: at as_of): D1 {I1, I2} = 2, D2 {I2} = 1, D3 {I2, I3} = 2.
    """
    result = derive(incidents=[incident("api", at(D1, "22:00"), at(D2, "02:00")),
                               incident("api", at(D1, "23:00")),
                               incident("api", at(D3, "01:00"), at(D3, "12:00")),
                               incident("api", at(D1, "05:00"), severity="sev3")],
                    as_of=at(D3, "12:00"))
    assert cell(result, "mttr") == NO_DATA
    assert cell(result, "mttr", period=D2) == (approx(4.0), 1)
    assert cell(result, "mttr_p90", period=D3) == NO_DATA
    assert [cell(result, "open_failure_incidents", period=day) for day in (D1, D2, D3)] == [(2, 2), (1, 1), (2, 2)]
    assert cell(result, "open_failure_incidents", "all", D3) == (2, 2)


def test_open_failure_incidents_is_null_without_incident_data_and_zero_with_it():
    """web has only deployments -> null; api has only a sev3 incident -> 0 open failure incidents."""
    result = derive(incidents=[incident("api", at(D1, "05:00"), severity="sev3")],
                    deployments=[deployment("web", at(D1, "10:00"))])
    assert cell(result, "open_failure_incidents", "web") == NO_DATA
    assert cell(result, "open_failure_incidents") == (0, 0)


# ---------------------------------------------------------------------------------------------
# MTBF and availability.


def test_mtbf_and_availability_of_one_outage():
    """api sev1 D1 10:00-12:00 (a sev3 one 14:00-16:00 is no failure): downtime 2 h, 1 outage.

    D1: mtbf (24-2)/1 = 22 h; availability 22/24 = 91.67% (= mtbf / (mtbf + 2 h per outage)).
    D2: no outage -> mtbf null, availability 100% with sample 0.
    """
    result = derive(incidents=[incident("api", at(D1, "10:00"), at(D1, "12:00")),
                               incident("api", at(D1, "14:00"), at(D1, "16:00"), "sev3")])
    assert cell(result, "mtbf") == (approx(22.0), 1)
    assert cell(result, "availability") == (approx(100 * 22 / 24), 1)
    assert cell(result, "mtbf", period=D2) == NO_DATA
    assert cell(result, "availability", period=D2) == (approx(100.0), 0)


def test_overlapping_incidents_are_one_outage_counted_once():
    """api: 10-12, 11-14 and 14-15 (touching) merge into 10-15; 18-19 is separate.

    Downtime 5 + 1 = 6 h, 2 outages: mtbf (24-6)/2 = 9 h; availability 18/24 = 75% = 9 / (9 + 6/2).
    """
    result = derive(incidents=[incident("api", at(D1, "10:00"), at(D1, "12:00")),
                               incident("api", at(D1, "11:00"), at(D1, "14:00")),
                               incident("api", at(D1, "14:00"), at(D1, "15:00"), "sev2"),
                               incident("api", at(D1, "18:00"), at(D1, "19:00"))])
    assert cell(result, "mtbf") == (approx(9.0), 2)
    assert cell(result, "availability") == (approx(75.0), 2)


def test_outage_across_a_period_boundary_splits_downtime_and_counts_where_it_begins():
    """api outage D1 20:00 -> D2 04:00, extended by an incident D2 02:00-05:00; another D2 10:00-12:00.

    D1: downtime 4 h, 1 outage begins -> mtbf 20 h, availability 20/24 = 83.33% (1 outage overlaps).
    D2: downtime 5 + 2 = 7 h, only 10:00 begins there -> mtbf 17 h, availability 17/24 = 70.83% (2 overlap).
    """
    result = derive(incidents=[incident("api", at(D1, "20:00"), at(D2, "04:00")),
                               incident("api", at(D2, "02:00"), at(D2, "05:00")),
                               incident("api", at(D2, "10:00"), at(D2, "12:00"))])
    assert cell(result, "mtbf") == (approx(20.0), 1)
    assert cell(result, "availability") == (approx(100 * 20 / 24), 1)
    assert cell(result, "mtbf", period=D2) == (approx(17.0), 1)
    assert cell(result, "availability", period=D2) == (approx(100 * 17 / 24), 2)


def test_open_incident_runs_to_as_of():
    """as_of D2 06:00. api sev1 open since D1 20:00; web sev1 D2 05:00 resolved 08:00 (after as_of: still open).

    api D1: 4 h down -> mtbf 20, availability 83.33%. api D2: 6 elapsed hours all down -> availability 0%,
    no outage begins -> mtbf null. web D2: 1 h of 6 down -> availability 83.33%, mtbf 5/1 = 5 h; mttr null.
    D3 has not begun: null everywhere.
    """
    result = derive(incidents=[incident("api", at(D1, "20:00")), incident("web", at(D2, "05:00"), at(D2, "08:00"))],
                    as_of=at(D2, "06:00"))
    assert cell(result, "mtbf") == (approx(20.0), 1)
    assert cell(result, "availability") == (approx(100 * 20 / 24), 1)
    assert cell(result, "availability", period=D2) == (approx(0.0), 1)
    assert cell(result, "mtbf", period=D2) == NO_DATA
    assert cell(result, "availability", "web", D2) == (approx(100 * 5 / 6), 1)
    assert cell(result, "mtbf", "web", D2) == (approx(5.0), 1)
    assert cell(result, "mttr", "web", D2) == NO_DATA
    assert cell(result, "availability", period=D3) == NO_DATA


def test_monitored_service_without_incidents_is_fully_available_with_null_mtbf():
    """api is down 6 h on D1 (two outages, 75%); web is monitored but has no incidents: 100% with sample 0,
    mtbf null.

    all: availability mean(75, 100) = 87.5% over 2 overlapping outages; mtbf pools uptime: (18 + 24) / 2 = 21 h.
    """
    result = derive(incidents=[incident("api", at(D1, "10:00"), at(D1, "15:00")),
                               incident("api", at(D1, "18:00"), at(D1, "19:00"))],
                    deployments=[deployment("web", at(D1, "10:00"))], monitored=["api", "web"])
    assert cell(result, "availability", "web") == (approx(100.0), 0)
    assert cell(result, "mtbf", "web") == NO_DATA
    assert cell(result, "availability", "all") == (approx(87.5), 2)
    assert cell(result, "mtbf", "all") == (approx(21.0), 2)


def test_availability_is_null_without_any_incident_data():
    """No incident records at all: nobody can tell 100% from an unmonitored service."""
    result = derive(deployments=[deployment("api", at(D1, "10:00"))])
    assert cell(result, "availability") == NO_DATA
    assert cell(result, "availability", "all") == NO_DATA
    assert cell(result, "mtbf") == NO_DATA


# ---------------------------------------------------------------------------------------------
# Failed deployment recovery time.


def test_recovery_is_the_resolution_of_the_caused_incident_counted_in_its_period():
    """api deploys D1 10:00; sev1 incident D1 11:00 (window rule) resolved D2 04:00 -> 18 h, counted on D2."""
    result = derive(incidents=[incident("api", at(D1, "11:00"), at(D2, "04:00"))],
                    deployments=[deployment("api", at(D1, "10:00"))])
    assert cell(result, "failed_deployment_recovery_time") == NO_DATA
    assert cell(result, "failed_deployment_recovery_time", period=D2) == (approx(18.0), 1)
    assert cell(result, "failed_deployment_recovery_time", "all", D2) == (approx(18.0), 1)


def test_recovery_without_incident_is_the_next_successful_production_deployment():
    """api D1: failure 10:00, error 11:00, staging success 12:00, in_progress 12:30, success 13:00.
    Recoveries at 13:00: 3 h and 2 h -> median 2.5 h over 2. CFR: 2 failed of 3 final = 66.67%.
    A change request failed at D2 10:00 recovers with the D2 14:00 success: 4 h.
    """
    result = derive(changes=[change("api", at(D2, "10:00"), outcome="failed")],
                    deployments=[deployment("api", at(D1, "10:00"), status="failure"),
                                 deployment("api", at(D1, "11:00"), status="error"),
                                 deployment("api", at(D1, "12:00"), environment="staging"),
                                 deployment("api", at(D1, "12:30"), status="in_progress"),
                                 deployment("api", at(D1, "13:00")),
                                 deployment("api", at(D2, "14:00"))])
    assert cell(result, "failed_deployment_recovery_time") == (approx(2.5), 2)
    assert cell(result, "change_failure_rate") == (approx(100 * 2 / 3), 3)
    assert cell(result, "failed_deployment_recovery_time", period=D2) == (approx(4.0), 1)


def test_recovery_waits_for_every_incident_the_change_caused():
    """A (failure status, D1 10:00) is named by a sev2 incident resolved 12:00 and a sev4 one resolved 16:00;
    B succeeds at 11:00. Recovery is the latest resolution, 16:00, not B: 6 h.
    C (D2 10:00) caused an incident still open at as_of: not recovered yet, so no value on D2 or D3.
    """
    result = derive(incidents=[incident("api", at(D1, "10:30"), at(D1, "12:00"), "sev2", caused_by_change="A"),
                               incident("api", at(D1, "11:30"), at(D1, "16:00"), "sev4", caused_by_change="A"),
                               incident("api", at(D2, "10:30"), caused_by_change="C")],
                    deployments=[deployment("api", at(D1, "10:00"), status="failure", source_id="A"),
                                 deployment("api", at(D1, "11:00"), source_id="B"),
                                 deployment("api", at(D2, "10:00"), source_id="C"),
                                 deployment("api", at(D2, "11:00"), source_id="E")])
    assert cell(result, "failed_deployment_recovery_time") == (approx(6.0), 1)
    assert cell(result, "failed_deployment_recovery_time", period=D2) == NO_DATA
    assert cell(result, "failed_deployment_recovery_time", period=D3) == NO_DATA
    assert cell(result, "change_failure_rate", period=D2) == (approx(50.0), 2)


def test_a_failed_change_before_any_successful_deployment_has_no_recovery_yet():
    """api's only production deployment failed (a later success is staging): CFR 100%, no recovery -> null."""
    result = derive(deployments=[deployment("api", at(D1, "10:00"), status="failure"),
                                 deployment("api", at(D1, "11:00"), environment="staging")])
    assert cell(result, "change_failure_rate") == (approx(100.0), 1)
    assert cell(result, "failed_deployment_recovery_time") == NO_DATA
    assert cell(result, "deployment_frequency") == (0, 0)


# ---------------------------------------------------------------------------------------------
# Deployment rework rate.


def test_deployment_during_an_open_failure_incident_of_the_service_is_rework():
    """api sev1 incident 10:00-12:00 and a sev3 one 14:00-16:00. api deployments with a final status:
    09:00 (before), 10:00 (at its opening: during), 11:00 failure (during), 12:00 (at resolution: after),
    15:00 (during the sev3 only); 11:30 in_progress is no final deployment. web 11:00 is another service.
    api 2/5 = 40%, web 0/1 = 0%, all 2/6 = 33.33%.
    """
    result = derive(incidents=[incident("api", at(D1, "10:00"), at(D1, "12:00")),
                               incident("api", at(D1, "14:00"), at(D1, "16:00"), "sev3")],
                    deployments=[deployment("api", at(D1, "09:00")),
                                 deployment("api", at(D1, "10:00")),
                                 deployment("api", at(D1, "11:00"), status="failure"),
                                 deployment("api", at(D1, "11:30"), status="in_progress"),
                                 deployment("api", at(D1, "12:00")),
                                 deployment("api", at(D1, "15:00")),
                                 deployment("web", at(D1, "11:00"))])
    assert cell(result, "deployment_rework_rate") == (approx(40.0), 5)
    assert cell(result, "deployment_rework_rate", "web") == (approx(0.0), 1)
    assert cell(result, "deployment_rework_rate", "all") == (approx(100 * 2 / 6), 6)


def test_deployment_implementing_an_emergency_change_is_rework():
    """Deployments naming emergency change E, normal change N, and none: 1/3 = 33.33%."""
    result = derive(changes=[change("api", at(D1, "08:00"), kind="emergency", source_id="E"),
                             change("api", at(D1, "08:00"), source_id="N")],
                    deployments=[deployment("api", at(D1, "09:00"), change_id="E"),
                                 deployment("api", at(D1, "10:00"), change_id="N"),
                                 deployment("api", at(D1, "11:00"))])
    assert cell(result, "deployment_rework_rate") == (approx(100 / 3), 3)


def test_deployment_during_an_incident_still_open_at_as_of_is_rework():
    """as_of D1 12:00; sev1 incident open since 09:00; deployments 08:00 and 10:00 -> 1/2 = 50%."""
    result = derive(incidents=[incident("api", at(D1, "09:00"))],
                    deployments=[deployment("api", at(D1, "08:00")), deployment("api", at(D1, "10:00"))],
                    as_of=at(D1, "12:00"))
    assert cell(result, "deployment_rework_rate") == (approx(50.0), 2)


# ---------------------------------------------------------------------------------------------
# Edge cases of the input.


def test_offsets_other_than_utc_land_in_their_utc_day():
    """03-03 02:00+05:30 is D1 20:30 UTC; D1 20:00-05:00 is D2 01:00 UTC. One deployment on each day."""
    result = derive(deployments=[deployment("api", "2026-03-03T02:00:00+05:30"),
                                 deployment("api", "2026-03-02T20:00:00-05:00")])
    assert cell(result, "deployment_frequency") == (1, 1)
    assert cell(result, "deployment_frequency", period=D2) == (1, 1)


def test_offsets_other_than_utc_land_in_their_utc_month():
    """03-01 03:00+05:30 is 02-28 21:30 UTC: a February deployment.
    An incident opened 03-01 01:00+02:00 (02-28 23:00 UTC), resolved 03-01 00:30 UTC: 1.5 h, its outage
    begins in February (mtbf (672 - 1) / 1 = 671 h) and its restore is counted in March.
    """
    result = derive(incidents=[incident("api", "2026-03-01T01:00:00+02:00", "2026-03-01T00:30:00Z")],
                    deployments=[deployment("api", "2026-03-01T03:00:00+05:30")],
                    grain="month", start="2026-02-01", end="2026-04-01")
    assert cell(result, "deployment_frequency", period="2026-02-01") == (1, 1)
    assert cell(result, "deployment_frequency", period="2026-03-01") == (0, 0)
    assert cell(result, "mtbf", period="2026-02-01") == (approx(28 * 24 - 1.0), 1)
    assert cell(result, "mttr", period="2026-02-01") == NO_DATA
    assert cell(result, "mttr", period="2026-03-01") == (approx(1.5), 1)


def test_duplicate_records_count_by_their_newest_version():
    """A: failure (updated 10:30) over in_progress (updated 10:00, listed later); B: success over in_progress.
    The incident's newest version is resolved after 2 h.
    deployment_frequency 1 (B); CFR: A failed by status, B failed by the incident 1 h later -> 2/2; mttr 2 h.
    """
    result = derive(
        incidents=[incident("api", at(D1, "12:00"), None, source_id="I", updated_at=at(D1, "12:00")),
                   incident("api", at(D1, "12:00"), at(D1, "14:00"), source_id="I", updated_at=at(D1, "14:00"))],
        deployments=[deployment("api", at(D1, "10:00"), "failure", source_id="A", updated_at=at(D1, "10:30")),
                     deployment("api", at(D1, "10:00"), "in_progress", source_id="A", updated_at=at(D1, "10:00")),
                     deployment("api", at(D1, "11:00"), "in_progress", source_id="B", updated_at=at(D1, "11:00")),
                     deployment("api", at(D1, "11:00"), "success", source_id="B", updated_at=at(D1, "11:20"))])
    assert cell(result, "deployment_frequency") == (1, 1)
    assert cell(result, "change_failure_rate") == (approx(100.0), 2)
    assert cell(result, "mttr") == (approx(2.0), 1)
    assert cell(result, "open_failure_incidents") == (0, 0)


RATES_AND_TIMES = ["lead_time_for_changes", "change_failure_rate", "mttr", "mttr_median", "mttr_p90", "mtbf",
                   "failed_deployment_recovery_time", "deployment_rework_rate"]


@pytest.mark.parametrize("metric", RATES_AND_TIMES)
def test_a_period_without_data_is_null_never_zero(metric):
    """Everything happens on D1 (every metric has a value there); D2 has nothing to average -> null, sample 0."""
    result = derive(incidents=[incident("api", at(D1, "11:00"), at(D1, "12:00"))],
                    deployments=[deployment("api", at(D1, "10:00")), deployment("api", at(D1, "11:30"))],
                    pull_requests=[pull_request("api", at(D1, "08:00"), at(D1, "10:30"))])
    assert cell(result, metric)[0] is not None
    assert cell(result, metric, period=D2) == NO_DATA
    assert cell(result, metric, "all", D2) == NO_DATA


def test_events_at_or_after_as_of_have_not_happened():
    """as_of D2 12:00. Deployments D2 11:00 (seen) and D2 12:00 (not yet): D2 count 1, 1 per 12 h = 2/day.
    The PR merged 11:30 waits for the 12:00 deployment: no lead time. The change request failing at 13:00 is
    not there: CFR on D2 is 0/1. D3 has not begun: null with sample 0 for every metric.
    """
    result = derive(changes=[change("api", at(D2, "13:00"), outcome="failed")],
                    deployments=[deployment("api", at(D2, "11:00")), deployment("api", at(D2, "12:00"))],
                    pull_requests=[pull_request("api", at(D2, "10:00"), at(D2, "11:30"))],
                    as_of=at(D2, "12:00"))
    assert cell(result, "deployment_frequency", period=D2) == (1, 1)
    assert cell(result, "deployment_frequency_per_day", period=D2) == (approx(2.0), 1)
    assert cell(result, "lead_time_for_changes", period=D2) == NO_DATA
    assert cell(result, "change_failure_rate", period=D2) == (approx(0.0), 1)
    future = result[result["period_start"] == pd.Timestamp(D3, tz="UTC")]
    assert future["value"].isna().all() and (future["sample_size"] == 0).all()


def test_a_service_whose_records_all_lie_after_as_of_has_no_data_yet():
    """as_of D2 00:00. `web` first deploys and has its first incident on D2: as of D1's end it has no
    production deployments and no incident records, so its D1 values are null like a service without data.
    """
    result = derive(incidents=[incident("api", at(D1, "10:00"), at(D1, "11:00")),
                               incident("web", at(D2, "10:00"), at(D2, "11:00"))],
                    deployments=[deployment("api", at(D1, "10:00")), deployment("web", at(D2, "10:00"))],
                    as_of=D2)
    assert cell(result, "deployment_frequency", "web") == NO_DATA
    assert cell(result, "open_failure_incidents", "web") == NO_DATA
    assert cell(result, "deployment_frequency") == (1, 1)
