"""DORA performance bands (elite / high / medium / low) for the DORA metrics.

The limits are data, keyed by State of DevOps report year, in the packaged
`scoring/data/dora_bands.yaml`; this module only loads and applies them. A value gets
the first band, from elite downward, whose limit holds.
"""

from __future__ import annotations

import math
from functools import cache
from importlib.resources import files
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, model_validator

# Which metrics get a band, and from which band table. Deployment frequency as a count per
# period is turned into deployments per day; time to restore uses the recovery-time bands.
BAND_TABLE_OF_METRIC: dict[str, str] = {
    "deployment_frequency": "deployment_frequency",
    "deployment_frequency_per_day": "deployment_frequency",
    "lead_time_for_changes": "lead_time_for_changes",
    "change_failure_rate": "change_failure_rate",
    "failed_deployment_recovery_time": "failed_deployment_recovery_time",
    "mttr": "failed_deployment_recovery_time",
    "mttr_median": "failed_deployment_recovery_time",
}
COUNT_PER_PERIOD_METRICS = frozenset({"deployment_frequency"})
BAND_NAMES = ("elite", "high", "medium", "low")

_LIMITS = ("at_least", "above", "at_most", "below")


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    band: Literal["elite", "high", "medium", "low"]
    published: str
    reading: str
    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_limit_at_most(self) -> Band:
        if sum(getattr(self, name) is not None for name in _LIMITS) > 1:
            raise ValueError(f"band {self.band}: give at most one of {', '.join(_LIMITS)}")
        return self

    def holds(self, values: np.ndarray) -> np.ndarray:
        """Element-wise: does each value fall in this band? (NaN never does.)"""
        with np.errstate(invalid="ignore"):
            if self.at_least is not None:
                return values >= self.at_least
            if self.above is not None:
                return values > self.above
            if self.at_most is not None:
                return values <= self.at_most
            if self.below is not None:
                return values < self.below
        return ~np.isnan(values)


class BandTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str
    bands: list[Band]

    @model_validator(mode="after")
    def _last_band_catches_all(self) -> BandTable:
        last = self.bands[-1] if self.bands else None
        if last is None or any(getattr(last, name) is not None for name in _LIMITS):
            raise ValueError("the last band must have no limit (it catches every other value)")
        return self

    def classify(self, values: np.ndarray) -> np.ndarray:
        """Band name per value (object array, None for NaN), first matching band wins."""
        conditions = [band.holds(values) for band in self.bands]
        return np.select(conditions, [band.band for band in self.bands], default=None)


class ReportYear(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    metrics: dict[str, BandTable]


@cache
def band_data() -> dict[int, ReportYear]:
    """The packaged band tables, by report year (read once)."""
    text = files("scoring").joinpath("data/dora_bands.yaml").read_text(encoding="utf-8")
    return {int(year): ReportYear.model_validate(entry) for year, entry in yaml.safe_load(text).items()}


def available_years() -> list[int]:
    """Report years with band tables, oldest first."""
    return sorted(band_data())


def newest_year() -> int:
    return available_years()[-1]


def report_year(year: int | None = None) -> ReportYear:
    """The band tables of `year` (None: the newest report)."""
    year = newest_year() if year is None else year
    if year not in band_data():
        raise ValueError(f"no DORA bands for report year {year} (available: {', '.join(map(str, available_years()))})")
    return band_data()[year]


def is_banded(metric: str) -> bool:
    return metric in BAND_TABLE_OF_METRIC


def dora_band(metric: str, value: float, period_days: float, year: int | None = None) -> str | None:
    """The DORA band of one metric value, or None for a metric without bands or a missing value.

    `period_days` is the length of the value's period; it turns a deployment count into
    deployments per day and is ignored for the other metrics.
    """
    if not is_banded(metric) or value is None or math.isnan(value):
        return None
    bands = dora_bands(pd.Series([metric]), pd.Series([value], dtype=float), period_days, year)
    return bands.iloc[0]


def dora_bands(
    metrics: pd.Series, values: pd.Series, period_days: pd.Series | float, year: int | None = None
) -> pd.Series:
    """`dora_band` over aligned Series (object dtype, None where there is no band)."""
    tables = report_year(year).metrics
    metrics = pd.Series(metrics).reset_index(drop=True)
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    days = np.broadcast_to(np.asarray(period_days, dtype=float), numbers.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        numbers = np.where(metrics.isin(COUNT_PER_PERIOD_METRICS).to_numpy(), numbers / days, numbers)
    table_names = metrics.map(BAND_TABLE_OF_METRIC)
    result = np.full(len(numbers), None, dtype=object)
    for table_name in table_names.dropna().unique():
        rows = (table_names == table_name).to_numpy()
        result[rows] = tables[table_name].classify(numbers[rows])
    return pd.Series(result, index=pd.Series(values).index, dtype=object)
