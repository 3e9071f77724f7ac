"""The revised metric contract: explicit links that hold, one change counted once, monitored services.

Conventions as in tests/test_metrics.py (whose helpers these tests use): the grid is the three UTC
days D1 (Mon 2026-03-02), D2, D3 with as_of at the end of D3 unless a test says otherwise; failure
severities sev1/sev2, a 24 h change failure window. Every figure is worked out in the docstring.
"""

from __future__ import annotations

import pandas as pd
from pytest import approx
from test_metrics import D1, D2, D3, NO_DATA, at, cell, change, deployment, derive, incident, records

from scoring.metrics import CHANGE_AFTER_INCIDENT, UNKNOWN_CHANGE, dangling_change_links

DANGLING_COLUMNS = ["source", "source_id", "service", "caused_by_change", "reason"]


def dangling(incidents=(), changes=(), deployments=(), *, as_of="2026-03-05") -> pd.DataFrame:
    frames = [records(kind, list(rows)) for kind, rows in
              (("incidents", incidents), ("changes", changes), ("deployments", deployments))]
    return dangling_change_links(*frames, as_of=as_of)


# ---------------------------------------------------------------------------------------------
# Explicit beats inferred, but only a link that holds.


def test_a_link_to_an_unknown_change_falls_back_to_the_window_rule():
    """The worked example. D1 deploys 2026-02-10 10:00 (success); sev1 I1 opens 11:00, resolved 13:00, names
    CHG-404, which is no change: the link does not hold, so the window rule gives I1 to D1 (1 h earlier).
    February: CFR 1/1 = 100%; recovery 13:00 - 10:00 = 3 h over 1.
    """
    result = derive(incidents=[incident("api", "2026-02-10T11:00Z", "2026-02-10T13:00Z", caused_by_change="CHG-404")],
                    deployments=[deployment("api", "2026-02-10T10:00Z", source_id="D1")],
                    grain="month", start="2026-02-01", end="2026-03-01")
    assert cell(result, "change_failure_rate", period="2026-02-01") == (approx(100.0), 1)
    assert cell(result, "failed_deployment_recovery_time", period="2026-02-01") == (approx(3.0), 1)


def test_a_link_to_a_change_implemented_after_the_incident_does_not_hold():
    """api deploys A D1 10:00 and B D2 10:00. A sev1 incident D1 11:00-12:00 names B, which came 23 h later:
    the link does not hold, the window rule gives the incident to A. CFR D1 1/1, D2 0/1 (B did not fail);
    recovery of A: 12:00 - 10:00 = 2 h. Following the link would have given B a recovery of -22 h.
    A sev4 incident on D2 at 09:00 naming B (an hour early) fails nothing: not a failure, so no window rule.
    """
    result = derive(incidents=[incident("api", at(D1, "11:00"), at(D1, "12:00"), caused_by_change="B"),
                               incident("api", at(D2, "09:00"), at(D2, "09:30"), "sev4", caused_by_change="B")],
                    deployments=[deployment("api", at(D1, "10:00"), source_id="A"),
                                 deployment("api", at(D2, "10:00"), source_id="B")])
    assert cell(result, "change_failure_rate") == (approx(100.0), 1)
    assert cell(result, "change_failure_rate", period=D2) == (approx(0.0), 1)
    assert cell(result, "failed_deployment_recovery_time") == (approx(2.0), 1)
    assert cell(result, "failed_deployment_recovery_time", period=D2) == NO_DATA
    recovery = result.loc[result["metric"] == "failed_deployment_recovery_time", "value"].dropna()
    assert (recovery >= 0).all()


def test_a_link_to_a_request_deployed_after_the_incident_falls_back_to_the_window_rule():
    """Request R (implemented_at D1 09:00) is implemented by deployment P at D1 12:00, so R is no change of its own.
    api also deploys A at 08:00. A sev1 incident 10:00-11:00 names R: its only deployment came after the incident,
    so the link does not hold; the window rule gives it to A (R itself is not a change). CFR: A, P -> 1/2 = 50%;
    recovery of A: 11:00 - 08:00 = 3 h.
    """
    result = derive(incidents=[incident("api", at(D1, "10:00"), at(D1, "11:00"), caused_by_change="R")],
                    changes=[change("api", at(D1, "09:00"), source_id="R")],
                    deployments=[deployment("api", at(D1, "08:00"), source_id="A"),
                                 deployment("api", at(D1, "12:00"), source_id="P", change_id="R")])
    assert cell(result, "change_failure_rate") == (approx(50.0), 2)
    assert cell(result, "failed_deployment_recovery_time") == (approx(3.0), 1)


def test_a_link_to_a_request_goes_to_its_latest_deployment_at_or_before_the_incident():
    """Request R (implemented_at D1 08:00) is implemented by P1 09:00, P2 10:00 and P3 13:00; C (11:00) implements
    nothing. A sev2 incident 12:00-14:00 names R: it goes to P2, the latest of R's deployments by 12:00 (not to C,
    the window rule's pick, nor to P3, after it). CFR: P1, P2, C, P3 -> 1/4 = 25%; recovery 14:00 - 10:00 = 4 h.
    """
    result = derive(incidents=[incident("api", at(D1, "12:00"), at(D1, "14:00"), "sev2", caused_by_change="R")],
                    changes=[change("api", at(D1, "08:00"), source_id="R")],
                    deployments=[deployment("api", at(D1, "09:00"), source_id="P1", change_id="R"),
                                 deployment("api", at(D1, "10:00"), source_id="P2", change_id="R"),
                                 deployment("api", at(D1, "11:00"), source_id="C"),
                                 deployment("api", at(D1, "13:00"), source_id="P3", change_id="R")])
    assert cell(result, "change_failure_rate") == (approx(25.0), 4)
    assert cell(result, "failed_deployment_recovery_time") == (approx(4.0), 1)


def test_a_link_to_a_request_of_its_own_holds_when_implemented_before_the_incident():
    """Request R (D1 09:00, no deployment implements it); api deploys A at 10:00. A sev1 incident 11:00-12:00
    names R: the link holds for R, not the window rule's A. CFR 1/2 = 50%; recovery 12:00 - 09:00 = 3 h.
    """
    result = derive(incidents=[incident("api", at(D1, "11:00"), at(D1, "12:00"), caused_by_change="R")],
                    changes=[change("api", at(D1, "09:00"), source_id="R")],
                    deployments=[deployment("api", at(D1, "10:00"), source_id="A")])
    assert cell(result, "change_failure_rate") == (approx(50.0), 2)
    assert cell(result, "failed_deployment_recovery_time") == (approx(3.0), 1)


# ---------------------------------------------------------------------------------------------
# One change, counted once.


def test_a_failed_request_fails_each_of_its_deployments_and_is_not_a_change_itself():
    """Request R failed (implemented_at D1 09:00), implemented by P1 10:00 and P2 11:00 (both status success);
    X 12:00 implements nothing. CFR: P1, P2 failed, X not -> 2/3 = 66.67% (R is not counted).
    Recovery: P1 and P2 recover with the next successful deployment not failed itself, X: 2 h and 1 h ->
    median 1.5 h over 2. The deployments still deployed successfully: frequency 3; none is rework.
    """
    result = derive(changes=[change("api", at(D1, "09:00"), outcome="failed", source_id="R")],
                    deployments=[deployment("api", at(D1, "10:00"), source_id="P1", change_id="R"),
                                 deployment("api", at(D1, "11:00"), source_id="P2", change_id="R"),
                                 deployment("api", at(D1, "12:00"), source_id="X")])
    assert cell(result, "change_failure_rate") == (approx(100 * 2 / 3), 3)
    assert cell(result, "failed_deployment_recovery_time") == (approx(1.5), 2)
    assert cell(result, "deployment_frequency") == (3, 3)
    assert cell(result, "deployment_rework_rate") == (approx(0.0), 3)


def test_a_request_with_only_non_production_or_unfinished_deployments_stays_its_own_change():
    """Request R failed at D1 09:00; it is deployed to staging (S, 10:00) and to production still in_progress
    (Q, 10:30): no production deployment with a final status implements it, so R is its own change.
    X succeeds at 11:00. CFR: R failed, X not -> 1/2 = 50%; R recovers with X: 2 h.
    """
    result = derive(changes=[change("api", at(D1, "09:00"), outcome="failed", source_id="R")],
                    deployments=[deployment("api", at(D1, "10:00"), environment="staging", change_id="R"),
                                 deployment("api", at(D1, "10:30"), status="in_progress", change_id="R"),
                                 deployment("api", at(D1, "11:00"), source_id="X")])
    assert cell(result, "change_failure_rate") == (approx(50.0), 2)
    assert cell(result, "failed_deployment_recovery_time") == (approx(2.0), 1)


def test_an_emergency_request_is_counted_through_its_deployments_which_are_rework():
    """Emergency request E (D1 08:00, successful) implemented by P1 09:00 and P2 10:00; N 11:00 implements nothing.
    CFR counts P1, P2, N (not E): 0/3. Rework: P1 and P2 are unplanned -> 2/3 = 66.67%.
    """
    result = derive(changes=[change("api", at(D1, "08:00"), kind="emergency", source_id="E")],
                    deployments=[deployment("api", at(D1, "09:00"), change_id="E"),
                                 deployment("api", at(D1, "10:00"), change_id="E"),
                                 deployment("api", at(D1, "11:00"))])
    assert cell(result, "change_failure_rate") == (approx(0.0), 3)
    assert cell(result, "deployment_rework_rate") == (approx(100 * 2 / 3), 3)


def test_a_request_is_its_own_change_until_its_deployment_has_happened():
    """Request R failed at D1 09:00; its deployment P comes at D1 13:00.
    as_of D1 12:00: P has not happened, R is its own change -> CFR 1/1. At the end of D3: P carries R's
    failure and R is not counted -> CFR 1/1 again, one change, never two.
    """
    rows = {"changes": [change("api", at(D1, "09:00"), outcome="failed", source_id="R")],
            "deployments": [deployment("api", at(D1, "13:00"), source_id="P", change_id="R")]}
    assert cell(derive(**rows, as_of=at(D1, "12:00")), "change_failure_rate") == (approx(100.0), 1)
    assert cell(derive(**rows), "change_failure_rate") == (approx(100.0), 1)


# ---------------------------------------------------------------------------------------------
# Monitored services: availability and mtbf.


def test_a_service_with_only_deployments_adds_nothing_to_availability():
    """api is down 6 h on D1 (two outages: 75%, mtbf 18/2 = 9 h); web has only deployments, so without a
    `monitored` list it is not monitored: availability and mtbf null with sample 0, and out of `all`:
    availability `all` = 75% over 2 outages (not mean(75, 100) = 87.5%), mtbf `all` = 18 / 2 = 9 h.
    """
    result = derive(incidents=[incident("api", at(D1, "10:00"), at(D1, "15:00")),
                               incident("api", at(D1, "18:00"), at(D1, "19:00"))],
                    deployments=[deployment("web", at(D1, "10:00"))])
    assert cell(result, "availability", "web") == NO_DATA
    assert cell(result, "mtbf", "web") == NO_DATA
    assert cell(result, "availability", "all") == (approx(75.0), 2)
    assert cell(result, "mtbf", "all") == (approx(9.0), 2)
    assert cell(result, "deployment_frequency", "web") == (1, 1)


def test_without_a_list_a_service_with_any_incident_before_as_of_is_monitored():
    """as_of D2 00:00. web's only incident is a sev4 (no outage): monitored, 100% with sample 0, mtbf null.
    batch's only incident opens on D2, after as_of: not monitored yet -> null. api: sev1 D1 00:00-06:00 -> 75%.
    all: mean(75, 100) = 87.5% over 1 outage; mtbf all (18 + 24) / 1 = 42 h.
    """
    result = derive(incidents=[incident("api", at(D1, "00:00"), at(D1, "06:00")),
                               incident("web", at(D1, "10:00"), at(D1, "11:00"), "sev4"),
                               incident("batch", at(D2, "10:00"), at(D2, "11:00"))],
                    as_of=D2)
    assert cell(result, "availability", "web") == (approx(100.0), 0)
    assert cell(result, "mtbf", "web") == NO_DATA
    assert cell(result, "availability", "batch") == NO_DATA
    assert cell(result, "availability", "all") == (approx(87.5), 1)
    assert cell(result, "mtbf", "all") == (approx(42.0), 1)


def test_a_monitored_list_decides_which_services_have_availability():
    """monitored = api, billing. api: sev1 D1 10:00-16:00 -> 75%, mtbf 18 h. billing has no records at all: it gets
    rows, 100% with sample 0 and mtbf null. web (deploys D1 00:00, sev1 01:00-13:00) is not monitored:
    availability and mtbf null with sample 0, and its outage stays out of `all`: availability mean(75, 100) = 87.5%
    over 1 outage, mtbf (18 + 24) / 1 = 42 h. web's other metrics are unchanged: mttr 12 h, CFR 1/1.
    """
    result = derive(incidents=[incident("api", at(D1, "10:00"), at(D1, "16:00")),
                               incident("web", at(D1, "01:00"), at(D1, "13:00"))],
                    deployments=[deployment("web", at(D1, "00:00"))],
                    monitored=["api", "billing"])
    assert set(result["service"]) == {"api", "billing", "web", "all"}
    assert cell(result, "availability") == (approx(75.0), 1)
    assert cell(result, "mtbf") == (approx(18.0), 1)
    assert cell(result, "availability", "billing") == (approx(100.0), 0)
    assert cell(result, "mtbf", "billing") == NO_DATA
    assert cell(result, "availability", "web") == NO_DATA
    assert cell(result, "mtbf", "web") == NO_DATA
    assert cell(result, "availability", "all") == (approx(87.5), 1)
    assert cell(result, "mtbf", "all") == (approx(42.0), 1)
    assert cell(result, "mttr", "web") == (approx(12.0), 1)
    assert cell(result, "mttr", "all") == (approx(9.0), 2)
    assert cell(result, "change_failure_rate", "web") == (approx(100.0), 1)


def test_a_monitored_list_without_any_incident_records():
    """No incident records at all, monitored = api: api is monitored and had no outage -> 100%; an empty list
    monitors nothing -> null everywhere.
    """
    rows = {"deployments": [deployment("api", at(D1, "10:00"))]}
    assert cell(derive(**rows, monitored=["api"]), "availability", "all") == (approx(100.0), 0)
    empty = derive(**rows, monitored=[])
    assert cell(empty, "availability") == NO_DATA
    assert cell(empty, "availability", "all", D3) == NO_DATA


# ---------------------------------------------------------------------------------------------
# The data-quality check of links: dangling_change_links.


def test_dangling_change_links_gives_each_link_that_does_not_hold_and_why():
    """Deployments A D1 10:00 (production), B D2 10:00 (production), S D1 09:00 (staging), Q D1 09:00 (production,
    in_progress). Requests R (D1 08:00) implemented only by P D2 12:00; R2 never implemented; R3 D1 07:00, its own.
    Incidents (all opened D1 12:00 unless said): I1 -> A holds; I2 -> CHG-404 unknown; I3 (sev4) -> B after;
    I4 -> R after (P came later); I5 -> R2 after (not implemented by then); I6 -> S unknown (no production change);
    I7 -> Q unknown (no final status); I8 -> R3 holds; I9 no link; I10 -> CHG-404 but opened D3 after as_of.
    """
    result = dangling(
        incidents=[incident("api", at(D1, "12:00"), source_id="I1", caused_by_change="A"),
                   incident("api", at(D1, "12:00"), source_id="I2", caused_by_change="CHG-404"),
                   incident("web", at(D1, "12:00"), severity="sev4", source_id="I3", caused_by_change="B"),
                   incident("api", at(D1, "12:00"), source_id="I4", caused_by_change="R"),
                   incident("api", at(D1, "12:00"), source_id="I5", caused_by_change="R2"),
                   incident("api", at(D1, "12:00"), source_id="I6", caused_by_change="S"),
                   incident("api", at(D1, "12:00"), source_id="I7", caused_by_change="Q"),
                   incident("api", at(D1, "12:00"), source_id="I8", caused_by_change="R3"),
                   incident("api", at(D1, "12:00"), source_id="I9"),
                   incident("api", at(D3, "12:00"), source_id="I10", caused_by_change="CHG-404")],
        changes=[change("api", at(D1, "08:00"), source_id="R"), change("api", None, source_id="R2"),
                 change("api", at(D1, "07:00"), source_id="R3")],
        deployments=[deployment("api", at(D1, "10:00"), source_id="A"),
                     deployment("api", at(D2, "10:00"), source_id="B"),
                     deployment("api", at(D1, "09:00"), environment="staging", source_id="S"),
                     deployment("api", at(D1, "09:00"), status="in_progress", source_id="Q"),
                     deployment("api", at(D2, "12:00"), source_id="P", change_id="R")],
        as_of=D3)
    assert list(result.columns) == DANGLING_COLUMNS
    assert (result["source"] == "test").all()
    assert list(result[["source_id", "service", "caused_by_change", "reason"]].itertuples(index=False, name=None)) == [
        ("I2", "api", "CHG-404", UNKNOWN_CHANGE),
        ("I3", "web", "B", CHANGE_AFTER_INCIDENT),
        ("I4", "api", "R", CHANGE_AFTER_INCIDENT),
        ("I5", "api", "R2", CHANGE_AFTER_INCIDENT),
        ("I6", "api", "S", UNKNOWN_CHANGE),
        ("I7", "api", "Q", UNKNOWN_CHANGE),
    ]
    assert UNKNOWN_CHANGE == "unknown change"
    assert CHANGE_AFTER_INCIDENT == "change implemented after the incident opened"


def test_dangling_change_links_agrees_with_the_engine():
    """The worked example: the engine falls back to the window rule for I1, and the check reports I1's link."""
    rows = {"incidents": [incident("api", at(D1, "11:00"), at(D1, "13:00"), source_id="I1",
                                   caused_by_change="CHG-404")],
            "deployments": [deployment("api", at(D1, "10:00"), source_id="D1")]}
    assert cell(derive(**rows), "change_failure_rate") == (approx(100.0), 1)
    assert dangling(**rows)[["source_id", "reason"]].to_dict("records") == [
        {"source_id": "I1", "reason": UNKNOWN_CHANGE}]


def test_dangling_change_links_is_empty_and_typed_without_bad_links():
    result = dangling(incidents=[incident("api", at(D1, "11:00"), caused_by_change="A")],
                      deployments=[deployment("api", at(D1, "10:00"), source_id="A")])
    assert result.empty
    assert list(result.columns) == DANGLING_COLUMNS
    assert list(dangling().columns) == DANGLING_COLUMNS
