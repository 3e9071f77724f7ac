"""DORA bands: every boundary of the 2023 and 2024 tables, from the packaged dora_bands.yaml.

Readings (units: deployments per day, hours, percent):
- deployment frequency: >= 1/day elite, >= 1/7 high, >= 1/31 medium, else low (both years);
  a count per period is divided by the period's days (4 in a 28-day February = 1/7 per day).
- lead time for changes: < 24 h elite, <= 168 h high, <= 720 h medium, else low (both years).
- change failure rate: 2023 <= 5 elite, <= 10 high, <= 15 medium, else low;
  2024 <= 5 elite, <= 20 high, else low (the published medium "10%" is unreachable).
- recovery time (failed_deployment_recovery_time, mttr, mttr_median): 2023 < 1 h elite,
  < 24 h high, <= 168 h medium, else low; 2024 < 1 h elite, < 24 h high, else low.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from scoring import bands
from scoring.bands import BandTable, dora_band, dora_bands


def per_day(value: float, year: int) -> str | None:
    return dora_band("deployment_frequency_per_day", value, 1.0, year)


# --- deployment frequency --------------------------------------------------------------------


@pytest.mark.parametrize("year", [2023, 2024])
@pytest.mark.parametrize(
    ("deploys_per_day", "band"),
    [
        (5.0, "elite"),
        (1.0, "elite"),
        (0.999, "high"),
        (1 / 7, "high"),  # once a week
        (0.1428, "medium"),  # just under once a week
        (1 / 30, "medium"),  # once in a 30-day month
        (1 / 31, "medium"),  # once in a 31-day month
        (0.0322, "low"),  # less than once a month
        (0.0, "low"),
    ],
)
def test_deployment_frequency_per_day_boundaries(year, deploys_per_day, band):
    assert per_day(deploys_per_day, year) == band


@pytest.mark.parametrize(
    ("count", "days", "band"),
    [
        (30, 30, "elite"),  # 30 / 30 = 1 per day
        (31, 31, "elite"),  # 31 / 31 = 1 per day
        (29, 30, "high"),  # 29 / 30 = 0.967 per day
        (4, 28, "high"),  # 4 / 28 = 1/7 per day: exactly once a week
        (7, 7, "elite"),  # a week grain: 7 / 7 = 1 per day
        (1, 7, "high"),  # a week grain: 1 / 7
        (4, 30, "medium"),  # 4 / 30 = 0.133 < 1/7
        (1, 30, "medium"),  # 1 / 30: exactly once a month
        (1, 31, "medium"),  # once in a 31-day month is still monthly
        (0, 30, "low"),
    ],
)
def test_deployment_frequency_count_is_turned_into_per_day(count, days, band):
    assert dora_band("deployment_frequency", count, days, 2024) == band
    assert dora_band("deployment_frequency", count, days, 2023) == band


# --- lead time ---------------------------------------------------------------------------------


@pytest.mark.parametrize("year", [2023, 2024])
@pytest.mark.parametrize(
    ("hours", "band"),
    [
        (0.5, "elite"),
        (23.99, "elite"),
        (24, "high"),  # "less than one day" is strict
        (168, "high"),  # one week
        (168.01, "medium"),
        (720, "medium"),  # one month = 30 days
        (720.01, "low"),
        (5000, "low"),
    ],
)
def test_lead_time_boundaries(year, hours, band):
    assert dora_band("lead_time_for_changes", hours, 30, year) == band


# --- change failure rate -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "band"),
    [(0, "elite"), (5, "elite"), (5.01, "high"), (10, "high"), (15, "high"), (20, "high"), (20.01, "low"), (64, "low")],
)
def test_change_failure_rate_2024(percent, band):
    """2024: medium's published 10% sits under high's 20%, so medium is never given."""
    assert dora_band("change_failure_rate", percent, 30, 2024) == band


@pytest.mark.parametrize(
    ("percent", "band"),
    [(0, "elite"), (5, "elite"), (5.01, "high"), (10, "high"), (10.01, "medium"), (15, "medium"),
     (15.01, "low"), (100, "low")],
)  # fmt: skip
def test_change_failure_rate_2023(percent, band):
    assert dora_band("change_failure_rate", percent, 30, 2023) == band


# --- recovery time -----------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["failed_deployment_recovery_time", "mttr", "mttr_median"])
@pytest.mark.parametrize(
    ("hours", "band_2023", "band_2024"),
    [
        (0.5, "elite", "elite"),
        (0.99, "elite", "elite"),
        (1, "high", "high"),  # "less than one hour" is strict
        (23.99, "high", "high"),
        (24, "medium", "low"),  # 2024 medium repeats high's "less than one day": one day or more is low
        (168, "medium", "low"),
        (168.01, "low", "low"),
        (1000, "low", "low"),
    ],
)
def test_recovery_time_boundaries(metric, hours, band_2023, band_2024):
    assert dora_band(metric, hours, 30, 2023) == band_2023
    assert dora_band(metric, hours, 30, 2024) == band_2024


# --- no band -----------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["deployment_frequency", "lead_time_for_changes", "change_failure_rate", "mttr"])
@pytest.mark.parametrize("value", [float("nan"), None])
def test_missing_value_has_no_band(metric, value):
    assert dora_band(metric, value, 30, 2024) is None


@pytest.mark.parametrize(
    "metric", ["availability", "mtbf", "mttr_p90", "open_failure_incidents", "deployment_rework_rate", "manual:x"]
)
def test_non_dora_metric_has_no_band(metric):
    assert not bands.is_banded(metric)
    assert dora_band(metric, 1.0, 30, 2024) is None


def test_unknown_year_is_a_clear_value_error():
    with pytest.raises(ValueError, match=r"^no DORA bands for report year 2019 \(available: 2023, 2024\)$"):
        dora_band("lead_time_for_changes", 10, 30, 2019)
    with pytest.raises(ValueError, match="2031"):
        dora_bands(pd.Series(["mttr"]), pd.Series([1.0]), 30, 2031)


def test_default_year_is_the_newest():
    assert bands.available_years() == [2023, 2024]
    assert bands.newest_year() == 2024
    # 12% is high in 2024 (<= 20) but medium in 2023 (<= 15): the default follows 2024.
    assert dora_band("change_failure_rate", 12, 30) == "high"
    assert dora_band("change_failure_rate", 12, 30, 2023) == "medium"


# --- vectorised ------------------------------------------------------------------------------


def test_dora_bands_over_series_keeps_the_index():
    """Mixed metrics in one call; index 10.. kept; per-row period lengths.

    deployment_frequency 4 in 28 days = 1/7 -> high; 31 in 31 days -> elite;
    lead time 30 h -> high; CFR 12% (2024) -> high; mttr 0.5 h -> elite; availability -> None; NaN -> None.
    """
    index = pd.RangeIndex(10, 17)
    names = ["deployment_frequency", "deployment_frequency", "lead_time_for_changes", "change_failure_rate", "mttr",
             "availability", "lead_time_for_changes"]  # fmt: skip
    metrics = pd.Series(names, index=index)
    values = pd.Series([4, 31, 30.0, 12.0, 0.5, 99.9, np.nan], index=index)
    days = pd.Series([28, 31, 31, 31, 31, 31, 31], index=index, dtype=float)
    result = dora_bands(metrics, values, days, 2024)
    assert list(result.index) == list(index)
    assert result.tolist() == ["high", "elite", "high", "high", "elite", None, None]


def test_dora_bands_of_an_empty_series():
    result = dora_bands(pd.Series([], dtype=object), pd.Series([], dtype=float), 30, 2024)
    assert result.empty


# --- the data file ----------------------------------------------------------------------------


@pytest.mark.parametrize("year", [2023, 2024])
def test_band_yaml_has_four_tables_from_elite_down_and_the_last_band_catches_all(year):
    report = bands.report_year(year)
    assert report.source.startswith("Google Cloud, DORA")
    assert set(report.metrics) == {
        "deployment_frequency",
        "lead_time_for_changes",
        "change_failure_rate",
        "failed_deployment_recovery_time",
    }
    for table in report.metrics.values():
        assert [band.band for band in table.bands] == ["elite", "high", "medium", "low"]
        last = table.bands[-1]
        assert (last.at_least, last.above, last.at_most, last.below) == (None, None, None, None)
        # the catch-all means every finite number gets a band
        assert None not in table.classify(np.array([-1e9, 0.0, 1e9])).tolist()


def test_every_banded_metric_points_at_a_table_of_every_year():
    for year in bands.available_years():
        tables = bands.report_year(year).metrics
        assert {bands.BAND_TABLE_OF_METRIC[m] for m in bands.BAND_TABLE_OF_METRIC} <= set(tables)


def test_a_table_whose_last_band_has_a_limit_is_refused():
    with pytest.raises(ValidationError, match="the last band must have no limit"):
        BandTable.model_validate(
            {"unit": "hours", "bands": [{"band": "elite", "published": "x", "reading": "x", "below": 1}]}
        )


def test_a_band_with_two_limits_is_refused():
    with pytest.raises(ValidationError, match="give at most one of"):
        BandTable.model_validate(
            {
                "unit": "hours",
                "bands": [
                    {"band": "elite", "published": "x", "reading": "x", "below": 1, "at_most": 2},
                    {"band": "low", "published": "x", "reading": "x"},
                ],
            }
        )


def test_published_limits_are_what_the_readings_say():
    """The per-day limits are 1/7 and 1/31 to 12 digits (slightly under, so exact weekly/monthly reach them)."""
    table = bands.report_year(2024).metrics["deployment_frequency"]
    high, medium = table.bands[1].at_least, table.bands[2].at_least
    assert math.isclose(high, 1 / 7, rel_tol=1e-11) and high <= 1 / 7
    assert math.isclose(medium, 1 / 31, rel_tol=1e-11) and medium <= 1 / 31
