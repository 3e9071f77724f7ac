"""The metric engine: canonical record frames in, one row per (metric, service, period) out.

`derive_metrics` is pure and vectorised (no Python loop over records, services or periods), and
follows the definitions in `scoring.dictionary.METRICS` (the README's "Metrics" section is generated
from them). `dangling_change_links` is the data-quality check of incidents.caused_by_change: it
reports the links the engine does not follow, using the engine's own rule for whether a link holds.

Conventions inside this module:
- timestamps are int64 nanoseconds since the epoch, UTC; a missing one is `_NAT` and is always
  masked out explicitly before use;
- services are integer codes into the sorted service names; every result is a (service, period)
  grid with one extra last row for the organisation-wide `all` service;
- the records are read as they stood at `as_of`: an event stamped at or after `as_of` has not
  happened yet, and an incident resolved at or after `as_of` is still open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from scoring.dictionary import METRICS
from scoring.intervals import merge_intervals, spread_over_periods
from scoring.periods import period_table, utc

METRIC_COLUMNS = ["metric", "service", "grain", "period_start", "period_end", "value", "unit", "sample_size"]
ALL_SERVICES = "all"

_NAT = np.iinfo(np.int64).min
_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS
_FINAL_STATUSES = ("success", "failure", "error", "inactive")
# GitHub marks a successful deployment `inactive` once a newer one replaces it: it still succeeded.
_SUCCESS_STATUSES = ("success", "inactive")
_FAILED_STATUSES = ("failure", "error")
_FAILED_OUTCOMES = ("failed", "backed_out")
UNKNOWN_CHANGE = "unknown change"
CHANGE_AFTER_INCIDENT = "change implemented after the incident opened"


@dataclass(frozen=True)
class MetricSettings:
    failure_severities: tuple[str, ...] = ("sev1", "sev2")
    change_failure_window: pd.Timedelta = pd.Timedelta(hours=24)
    production_environments: tuple[str, ...] = ("production", "prod")  # compared case-insensitively


def derive_metrics(
    incidents: pd.DataFrame,
    changes: pd.DataFrame,
    deployments: pd.DataFrame,
    pull_requests: pd.DataFrame,
    *,
    grain: str,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    as_of: pd.Timestamp | str,
    settings: MetricSettings = MetricSettings(),
    services: Iterable[str] | None = None,
    monitored: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Every metric of the dictionary for every service and `all`, per `grain` period overlapping [start, end).

    `monitored` names the services whose incidents are their outage record (the caller derives it from
    the services mapped to an incident source); None means the services with any incident opened before
    as_of. availability and mtbf are figures of monitored services only. Every name in `services` and
    `monitored` gets rows, with or without records.

    Returns METRIC_COLUMNS sorted by metric, service, period_start: a complete grid where a cell
    without data has a null value and sample_size 0. Raises ValueError for a service named `all`.
    """
    periods = period_table(start, end, grain)
    listed = pd.DataFrame({"service": pd.Series([] if monitored is None else list(monitored), dtype=object)})
    names = _service_names(services, incidents, changes, deployments, pull_requests, listed)
    grid = _Grid(names, _ns(periods["period_start"]), _ns(periods["period_end"]), utc(as_of).as_unit("ns").value)
    if grid.n_periods == 0:
        return _empty_result()
    records = _Records.read(grid, settings, incidents, changes, deployments, pull_requests)
    change_set = _change_set(records, settings)
    outages = _outages(grid, records)
    # Without a list, the monitored services are those with incident records.
    watched = (
        records.reporting_incidents if monitored is None else _per_service_any(grid.service_of(listed["service"]), grid)
    )
    cells = {
        **_deployment_frequency(grid, records),
        **_lead_time(grid, records),
        **_change_failure(grid, records, change_set),
        **_restore_times(grid, records),
        **_outage_metrics(grid, outages, watched),
        **_rework(grid, records, outages),
    }
    return _rows(grid, grain, cells)


def dangling_change_links(
    incidents: pd.DataFrame,
    changes: pd.DataFrame,
    deployments: pd.DataFrame,
    *,
    as_of: pd.Timestamp | str,
    settings: MetricSettings = MetricSettings(),
) -> pd.DataFrame:
    """Incidents opened before as_of whose caused_by_change link does not hold (see `_linked_changes`).

    derive_metrics judges such an incident by the window rule instead. One row per incident, in input
    order, with source, source_id, service, caused_by_change and reason: UNKNOWN_CHANGE when the link
    names no production deployment with a final status and no change request at all, else
    CHANGE_AFTER_INCIDENT (the changes it names were implemented after the incident opened, or not yet).
    Incidents of every severity are checked: a link that holds attributes whatever the severity.
    """
    names = _service_names(None, incidents, changes, deployments)
    no_periods = np.array([], dtype=np.int64)
    grid = _Grid(names, no_periods, no_periods, utc(as_of).as_unit("ns").value)
    requests, production = _read_changes(grid, settings, changes, deployments)
    seen = _incidents(grid, settings, incidents)
    linked = _linked_changes(_failure_rate_changes(*_as_seen(grid, requests, production)), seen)
    dangling = seen["cause"].notna().to_numpy() & (linked < 0)
    known = pd.concat([production.loc[production["final"], "source_id"], requests["source_id"]])
    cause = seen["cause"][dangling]
    rows = seen["row"].to_numpy()[dangling]
    return pd.DataFrame(
        {
            "source": _column(incidents, "source").to_numpy()[rows],
            "source_id": _column(incidents, "source_id").to_numpy()[rows],
            "service": _column(incidents, "service").to_numpy()[rows],
            "caused_by_change": cause.to_numpy(),
            "reason": np.where(cause.isin(known).to_numpy(), CHANGE_AFTER_INCIDENT, UNKNOWN_CHANGE).astype(object),
        }
    )


# ---------------------------------------------------------------------------------------------
# Where things fall: services by periods.


@dataclass(frozen=True)
class _Grid:
    names: list[str]  # sorted service names; code i is names[i], code len(names) is `all`
    starts: np.ndarray  # period starts, ns
    ends: np.ndarray  # period ends (exclusive), ns
    as_of: int  # ns

    @property
    def n_services(self) -> int:
        return len(self.names)

    @property
    def n_periods(self) -> int:
        return len(self.starts)

    @cached_property
    def effective_ends(self) -> np.ndarray:
        """min(period end, as_of): the part of a period that has happened."""
        return np.minimum(self.ends, self.as_of)

    @cached_property
    def live(self) -> np.ndarray:
        """Periods that had begun by as_of; the others get null values."""
        return self.effective_ends > self.starts

    @cached_property
    def effective_hours(self) -> np.ndarray:
        return np.clip(self.effective_ends - self.starts, 0, None) / _HOUR_NS

    @cached_property
    def _service_index(self) -> pd.Index:
        return pd.Index(self.names, dtype=object)

    def service_of(self, services: pd.Series) -> np.ndarray:
        """Service code of each name (-1 for a missing one)."""
        return self._service_index.get_indexer(services.astype(object))

    def period_of(self, stamps: np.ndarray) -> np.ndarray:
        """Index of the period holding each timestamp, -1 outside every period (and for _NAT)."""
        period = np.searchsorted(self.starts, stamps, side="right") - 1
        return np.where((period >= 0) & (stamps < self.ends[-1]), period, -1)


@dataclass
class _Cells:
    """One metric over the grid: (services + 1, periods) arrays, the last row being `all`."""

    value: np.ndarray  # float64, NaN = no data
    size: np.ndarray  # int64 sample_size


def _service_names(services: Iterable[str] | None, *frames: pd.DataFrame) -> list[str]:
    found = set(services or ())
    for frame in frames:
        if "service" in frame.columns:
            found.update(frame["service"].dropna().unique())
    found.discard(None)
    if ALL_SERVICES in found:
        raise ValueError(f"a service may not be named '{ALL_SERVICES}': that name is the organisation-wide row")
    return sorted(str(name) for name in found)


def _ns(column: pd.Series) -> np.ndarray:
    """Timestamps as int64 ns since the epoch in UTC (naive input taken as UTC), _NAT for missing."""
    stamps = pd.DatetimeIndex(column)
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    return stamps.as_unit("ns").asi8


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as object values (NaN for empty), or all-empty when an optional column is absent."""
    if name in frame.columns:
        return frame[name].astype(object)
    return pd.Series(np.nan, index=frame.index, dtype=object)


def _stamps(frame: pd.DataFrame, name: str) -> np.ndarray:
    return _ns(frame[name]) if name in frame.columns else np.full(len(frame), _NAT)


# ---------------------------------------------------------------------------------------------
# The records as seen at as_of, reduced to what the metrics read.


@dataclass(frozen=True)
class _Records:
    # Production deployments: service, at, success, final, own_failure, emergency, source_id, change_id,
    # request, request_code.
    production: pd.DataFrame
    # Implemented change requests that are changes of their own: service, at, own_failure, emergency, source_id, code.
    requests: pd.DataFrame
    incidents: pd.DataFrame  # service, opened, resolved (_NAT while open), is_open, failure, cause, row
    merged_prs: pd.DataFrame  # service, started, merged
    deploying: np.ndarray  # per service: any production deployment before as_of
    reporting_incidents: np.ndarray  # per service: any incident opened before as_of

    @classmethod
    def read(
        cls,
        grid: _Grid,
        settings: MetricSettings,
        incidents: pd.DataFrame,
        changes: pd.DataFrame,
        deployments: pd.DataFrame,
        pull_requests: pd.DataFrame,
    ) -> _Records:
        production, requests = _as_seen(grid, *_read_changes(grid, settings, changes, deployments))
        seen_incidents = _incidents(grid, settings, incidents)
        return cls(
            production=production,
            requests=requests,
            incidents=seen_incidents,
            merged_prs=_merged_pull_requests(grid, pull_requests),
            deploying=_per_service_any(production["service"].to_numpy(), grid),
            reporting_incidents=_per_service_any(seen_incidents["service"].to_numpy(), grid),
        )


def _seen(stamps: pd.Series, grid: _Grid) -> np.ndarray:
    values = stamps.to_numpy()
    return (values != _NAT) & (values < grid.as_of)


def _per_service_any(service: np.ndarray, grid: _Grid) -> np.ndarray:
    return np.bincount(service[service >= 0], minlength=grid.n_services) > 0


def _read_changes(
    grid: _Grid, settings: MetricSettings, changes: pd.DataFrame, deployments: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every change request, every production deployment), seen or not, linked by `_link_requests`."""
    return _link_requests(_change_requests(grid, changes), _production_deployments(grid, settings, deployments))


def _as_seen(grid: _Grid, requests: pd.DataFrame, production: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(production deployments seen at as_of, seen implemented requests that are changes of their own).

    One change is counted once: a request implemented by a seen production deployment with a final
    status is its deployments in change_failure_rate, not a change of its own as well.
    """
    production = production[_seen(production["at"], grid)].reset_index(drop=True)
    implemented = production.loc[production["final"], "request_code"].to_numpy()
    implemented = implemented[implemented >= 0]  # -1: implements no request
    own = _seen(requests["at"], grid) & ~np.isin(requests["code"].to_numpy(), implemented)
    return production, requests[own].reset_index(drop=True)


def _production_deployments(grid: _Grid, settings: MetricSettings, deployments: pd.DataFrame) -> pd.DataFrame:
    """Every production deployment (any time): only the few distinct environment names are compared."""
    codes, environments = pd.factorize(deployments["environment"])
    wanted = {name.lower() for name in settings.production_environments}
    is_production = np.array([str(name).lower() in wanted for name in environments] + [False])
    status = _column(deployments, "status")
    frame = pd.DataFrame(
        {
            "service": grid.service_of(deployments["service"]),
            "at": _stamps(deployments, "deployed_at"),
            "success": status.isin(_SUCCESS_STATUSES).to_numpy(),
            "final": status.isin(_FINAL_STATUSES).to_numpy(),
            "own_failure": status.isin(_FAILED_STATUSES).to_numpy(),
            "source_id": _column(deployments, "source_id").to_numpy(),
            "change_id": _column(deployments, "change_id").to_numpy(),
        }
    )
    # codes is -1 for a missing environment, which picks the trailing False.
    return frame[is_production[codes] & (frame["service"].to_numpy() >= 0)].reset_index(drop=True)


def _link_requests(requests: pd.DataFrame, production: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requests and the production deployments implementing them (change_id = the request's source_id).

    requests gain code, an integer per source_id; deployments gain request (their change_id when it
    names a change request, else NaN) and its request_code (-1 for none). A deployment implementing an
    emergency request is emergency; one implementing a failed/backed_out request has failed by its own
    outcome (whatever its status, and whenever the request is recorded). One factorize over both id
    columns answers every lookup: hashing the id strings is the cost here.
    """
    change_id = production["change_id"]
    present = change_id.notna().to_numpy()
    ids, uniques = pd.factorize(np.concatenate([requests["source_id"].to_numpy(), change_id.to_numpy()[present]]))
    code = ids[: len(requests)]
    named = np.full(len(production), -1, dtype=np.int64)  # the code of each deployment's change_id
    named[present] = ids[len(requests):]

    def implements(flag: np.ndarray) -> np.ndarray:
        # One extra False at the end, picked by the -1 of a deployment naming nothing.
        return (np.bincount(code[flag & (code >= 0)], minlength=len(uniques) + 1) > 0)[named]

    is_request = implements(np.ones(len(requests), dtype=bool))
    return requests.assign(code=code), production.assign(
        request=change_id.where(is_request),
        request_code=np.where(is_request, named, -1),
        own_failure=production["own_failure"].to_numpy() | implements(requests["own_failure"].to_numpy()),
        emergency=implements(requests["emergency"].to_numpy()),
    )


def _change_requests(grid: _Grid, changes: pd.DataFrame) -> pd.DataFrame:
    """Every change request (any time; at is _NAT when it has no implemented_at)."""
    frame = pd.DataFrame(
        {
            "service": grid.service_of(changes["service"]),
            "at": _stamps(changes, "implemented_at"),
            "own_failure": _column(changes, "outcome").isin(_FAILED_OUTCOMES).to_numpy(),
            "emergency": (_column(changes, "type") == "emergency").to_numpy(),
            "source_id": _column(changes, "source_id").to_numpy(),
        }
    )
    return frame[frame["service"].to_numpy() >= 0].reset_index(drop=True)


def _incidents(grid: _Grid, settings: MetricSettings, incidents: pd.DataFrame) -> pd.DataFrame:
    resolved = _stamps(incidents, "resolved_at")
    still_open = (resolved == _NAT) | (resolved >= grid.as_of)
    severities = [severity.lower() for severity in settings.failure_severities]
    frame = pd.DataFrame(
        {
            "service": grid.service_of(incidents["service"]),
            "opened": _stamps(incidents, "opened_at"),
            "resolved": np.where(still_open, _NAT, resolved),
            "is_open": still_open,
            "failure": _column(incidents, "severity").isin(severities).to_numpy(),
            "cause": _column(incidents, "caused_by_change").to_numpy(),
            "row": np.arange(len(incidents)),  # position in the input frame
        }
    )
    return frame[_seen(frame["opened"], grid) & (frame["service"].to_numpy() >= 0)].reset_index(drop=True)


def _merged_pull_requests(grid: _Grid, pull_requests: pd.DataFrame) -> pd.DataFrame:
    first_commit = _stamps(pull_requests, "first_commit_at")
    frame = pd.DataFrame(
        {
            "service": grid.service_of(pull_requests["service"]),
            "started": np.where(first_commit == _NAT, _stamps(pull_requests, "created_at"), first_commit),
            "merged": _stamps(pull_requests, "merged_at"),
        }
    )
    return frame[_seen(frame["merged"], grid) & (frame["service"].to_numpy() >= 0)].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Building blocks: counts, rates and summary statistics over the grid.


def _counts(grid: _Grid, service: np.ndarray, period: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(services, periods) totals of events (or of their weights); events outside the periods are dropped."""
    inside = period >= 0
    flat = service[inside] * grid.n_periods + period[inside]
    weights = None if weights is None else weights[inside]
    totals = np.bincount(flat, weights, minlength=grid.n_services * grid.n_periods)
    return totals.reshape(grid.n_services, grid.n_periods)


def _with_all(per_service: np.ndarray, all_row: np.ndarray | None = None) -> np.ndarray:
    """Append the `all` row: the given one, or the sum over services."""
    return np.vstack([per_service, per_service.sum(axis=0) if all_row is None else all_row])


def _null_unless(has_records: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The grid's values, null in the rows of services without records (per service bools; `all`: any)."""
    rows = np.append(has_records, has_records.any())
    return np.where(rows[:, None], values, np.nan)


def _percent_of(grid: _Grid, service: np.ndarray, period: np.ndarray, hit: np.ndarray) -> _Cells:
    """100 * hits / events per cell, null where there were no events; `all` pools the services."""
    total = _with_all(_counts(grid, service, period))
    hits = _with_all(_counts(grid, service[hit], period[hit]))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(total > 0, 100.0 * hits / total, np.nan)
    return _Cells(value, total)


_STATISTICS: dict[str, Callable] = {
    "mean": lambda groups: groups.mean(),
    "median": lambda groups: groups.median(),
    "p90": lambda groups: groups.quantile(0.9, interpolation="linear"),
}


def _summaries(grid: _Grid, service: np.ndarray, period: np.ndarray, values: np.ndarray, *names: str) -> list[_Cells]:
    """The named statistics of `values` per cell; the `all` row summarises every service's values together."""
    inside = period >= 0
    service, period, values = service[inside], period[inside], values[inside]
    n_cells = (grid.n_services + 1) * grid.n_periods
    # Each value is counted twice: once in its service's cell and once in the `all` row (code n_services).
    cell = np.concatenate([service * grid.n_periods + period, grid.n_services * grid.n_periods + period])
    groups = pd.Series(np.concatenate([values, values])).groupby(cell)
    size = np.bincount(cell, minlength=n_cells).reshape(-1, grid.n_periods)
    results = []
    for name in names:
        flat = np.full(n_cells, np.nan)
        summary = _STATISTICS[name](groups)
        flat[summary.index.to_numpy()] = summary.to_numpy()
        results.append(_Cells(flat.reshape(-1, grid.n_periods), size))
    return results


def _asof_positions(
    left_service: np.ndarray,
    left_at: np.ndarray,
    right_service: np.ndarray,
    right_at: np.ndarray,
    *,
    direction: str,
    allow_exact_matches: bool = True,
    tolerance: int | None = None,
) -> np.ndarray:
    """For each left event, the position of the nearest right event of the same service (-1: none)."""
    found = np.full(len(left_at), -1, dtype=np.int64)
    if len(left_at) == 0 or len(right_at) == 0:
        return found
    left = pd.DataFrame({"service": left_service, "at": left_at, "row": np.arange(len(left_at))})
    right = pd.DataFrame({"service": right_service, "at": right_at, "match": np.arange(len(right_at))})
    matched = pd.merge_asof(
        left.sort_values("at", kind="stable"),
        right.sort_values("at", kind="stable"),
        on="at",
        by="service",
        direction=direction,
        allow_exact_matches=allow_exact_matches,
        tolerance=tolerance,
    )
    match = matched["match"].to_numpy(dtype=float, na_value=np.nan)
    found[matched["row"].to_numpy()] = np.where(np.isnan(match), -1, match).astype(np.int64)
    return found


def _stamps_at(stamps: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """stamps[positions], _NAT where the position is -1 (also when there are no stamps at all)."""
    picked = np.full(len(positions), _NAT)
    found = positions >= 0
    picked[found] = stamps[positions[found]]
    return picked


# ---------------------------------------------------------------------------------------------
# The metrics.


def _deployment_frequency(grid: _Grid, records: _Records) -> dict[str, _Cells]:
    successes = records.production[records.production["success"]]
    service = successes["service"].to_numpy()
    count = _with_all(_counts(grid, service, grid.period_of(successes["at"].to_numpy())))
    value = _null_unless(records.deploying, count)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_day = value / (grid.effective_hours / 24)
    return {
        "deployment_frequency": _Cells(value, count),
        "deployment_frequency_per_day": _Cells(per_day, count),
    }


def _lead_time(grid: _Grid, records: _Records) -> dict[str, _Cells]:
    """Each merged PR ships with the first successful production deployment of its service at or after its merge.

    A PR merged before its service's first recorded success (or with none at all) is untimed: the history
    starts after it shipped, so the first deployment on record would time it from the wrong end. It is
    counted in the period of its merge instead.
    """
    prs = records.merged_prs
    successes = records.production[records.production["success"]]
    service, merged = prs["service"].to_numpy(), prs["merged"].to_numpy()
    first_success = np.full(grid.n_services, np.iinfo(np.int64).max)
    np.minimum.at(first_success, successes["service"].to_numpy(), successes["at"].to_numpy())
    untimed = merged < first_success[service]
    position = _asof_positions(
        service, merged, successes["service"].to_numpy(), successes["at"].to_numpy(), direction="forward"
    )
    shipped = (position >= 0) & ~untimed
    deployed_at = successes["at"].to_numpy()[position[shipped]]
    hours = (deployed_at - prs["started"].to_numpy()[shipped]) / _HOUR_NS
    (median,) = _summaries(grid, service[shipped], grid.period_of(deployed_at), hours, "median")
    count = _with_all(_counts(grid, service[untimed], grid.period_of(merged[untimed])))
    merging = _per_service_any(service, grid)
    return {"lead_time_for_changes": median, "lead_time_untimed_prs": _Cells(_null_unless(merging, count), count)}


def _failure_rate_changes(production: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """The changes of change_failure_rate sorted by time: production deployments with a final status and
    the requests of their own (request is NaN for those: they are named by their source_id).

    Columns: service, at, own_failure, source_id, request.
    """
    deployments = production[production["final"]]
    columns = ["service", "at", "own_failure", "source_id", "request"]
    changes = pd.concat([deployments[columns], requests.assign(request=np.nan)[columns]], ignore_index=True)
    return changes.sort_values("at", kind="stable", ignore_index=True)


def _change_set(records: _Records, settings: MetricSettings) -> pd.DataFrame:
    """Every change for change_failure_rate, sorted by time, with whether it failed and its attributed incidents.

    Columns: those of `_failure_rate_changes`, failed, attributed (any incident attributed),
    recovered_at (latest resolution of its incidents, _NAT when one is still open or none is attributed),
    awaiting_resolution (an attributed incident is still open).
    """
    changes = _failure_rate_changes(records.production, records.requests)
    links = _attributions(changes, records.incidents, settings)
    incidents = records.incidents.iloc[links["incident"].to_numpy()]
    per_change = (
        pd.DataFrame(
            {
                "change": links["change"].to_numpy(),
                "is_open": incidents["is_open"].to_numpy(),
                "resolved": incidents["resolved"].to_numpy(),
            }
        )
        .groupby("change")
        .agg(is_open=("is_open", "any"), resolved=("resolved", "max"))
    )
    attributed = np.zeros(len(changes), dtype=bool)
    attributed[per_change.index.to_numpy()] = True
    awaiting = np.zeros(len(changes), dtype=bool)
    awaiting[per_change.index.to_numpy()] = per_change["is_open"].to_numpy()
    recovered_at = np.full(len(changes), _NAT)
    recovered_at[per_change.index.to_numpy()] = np.where(per_change["is_open"], _NAT, per_change["resolved"])
    return changes.assign(
        failed=changes["own_failure"].to_numpy() | attributed,
        attributed=attributed,
        awaiting_resolution=awaiting,
        recovered_at=recovered_at,
    )


def _linked_changes(changes: pd.DataFrame, incidents: pd.DataFrame) -> np.ndarray:
    """Per incident, the position in `changes` of the change its caused_by_change link holds for; -1 for none.

    The one rule for explicit links, shared by derive_metrics and dangling_change_links. A link names
    a change by its source_id, or a change request by its source_id, which then stands for the
    production deployments implementing it (or for the request itself when it is a change of its own).
    It holds for the latest named change implemented at or before the incident opened; it does not
    hold when it names no change, or only changes implemented after the incident opened.
    """
    cause = incidents["cause"]
    named = np.flatnonzero(cause.notna().to_numpy())
    causes = cause.to_numpy()[named]
    # Only the changes some link names enter the join, which keeps it small.
    by_id = np.flatnonzero(changes["source_id"].isin(causes).to_numpy())
    by_request = np.flatnonzero(changes["request"].isin(causes).to_numpy())
    ids, requests = changes["source_id"].to_numpy(), changes["request"].to_numpy()
    names = pd.DataFrame(
        {"cause": np.concatenate([ids[by_id], requests[by_request]]), "change": np.concatenate([by_id, by_request])}
    )
    pairs = pd.DataFrame({"cause": causes, "incident": named}).merge(names, on="cause")
    incident, change = pairs["incident"].to_numpy(), pairs["change"].to_numpy()
    before = changes["at"].to_numpy()[change] <= incidents["opened"].to_numpy()[incident]
    # `changes` is sorted by time, so the latest named change is the highest position.
    linked = np.full(len(incidents), -1, dtype=np.int64)
    np.maximum.at(linked, incident[before], change[before])
    return linked


def _attributions(changes: pd.DataFrame, incidents: pd.DataFrame, settings: MetricSettings) -> pd.DataFrame:
    """(change, incident) position pairs: the change an explicit link holds for, else the window rule.

    An incident whose link holds goes to that change only, whatever its severity. The window rule
    gives any other failure incident to the latest change of its service at or before its opening,
    if that change is at most change_failure_window earlier: so an incident after a service's
    second change goes to the second change, never to the first.
    """
    linked = _linked_changes(changes, incidents)
    explicit = np.flatnonzero(linked >= 0)
    candidates = np.flatnonzero(incidents["failure"].to_numpy() & (linked < 0))
    window = pd.Timedelta(settings.change_failure_window)
    change = _asof_positions(
        incidents["service"].to_numpy()[candidates],
        incidents["opened"].to_numpy()[candidates],
        changes["service"].to_numpy(),
        changes["at"].to_numpy(),
        direction="backward",
        tolerance=int(window / pd.Timedelta(1, "ns")),
    )
    return pd.concat(
        [
            pd.DataFrame({"change": linked[explicit], "incident": explicit}),
            pd.DataFrame({"change": change[change >= 0], "incident": candidates[change >= 0]}),
        ],
        ignore_index=True,
    )


def _change_failure(grid: _Grid, records: _Records, changes: pd.DataFrame) -> dict[str, _Cells]:
    service = changes["service"].to_numpy()
    failed = changes["failed"].to_numpy()
    rate = _percent_of(grid, service, grid.period_of(changes["at"].to_numpy()), failed)

    # Recovery: the resolution of the attributed incidents, else the next successful production deployment
    # not failed by its own outcome (a success implementing a failed request recovers nothing).
    production = records.production
    successes = production[production["success"] & ~production["own_failure"]]
    by_deployment = failed & ~changes["attributed"].to_numpy()
    next_success = _asof_positions(
        service[by_deployment],
        changes["at"].to_numpy()[by_deployment],
        successes["service"].to_numpy(),
        successes["at"].to_numpy(),
        direction="forward",
        allow_exact_matches=False,
    )
    recovered_at = changes["recovered_at"].to_numpy().copy()
    recovered_at[by_deployment] = _stamps_at(successes["at"].to_numpy(), next_success)
    recovered = failed & (recovered_at != _NAT)
    hours = (recovered_at[recovered] - changes["at"].to_numpy()[recovered]) / _HOUR_NS
    (median,) = _summaries(grid, service[recovered], grid.period_of(recovered_at[recovered]), hours, "median")
    return {"change_failure_rate": rate, "failed_deployment_recovery_time": median}


def _restore_times(grid: _Grid, records: _Records) -> dict[str, _Cells]:
    failures = records.incidents[records.incidents["failure"]]
    resolved = failures[~failures["is_open"]]
    hours = (resolved["resolved"].to_numpy() - resolved["opened"].to_numpy()) / _HOUR_NS
    period = grid.period_of(resolved["resolved"].to_numpy())
    mean, median, p90 = _summaries(grid, resolved["service"].to_numpy(), period, hours, "mean", "median", "p90")
    return {
        "mttr": mean,
        "mttr_median": median,
        "mttr_p90": p90,
        "open_failure_incidents": _open_failures(grid, records, failures),
    }


def _open_failures(grid: _Grid, records: _Records, failures: pd.DataFrame) -> _Cells:
    """Failure incidents open at each period's effective end E: opened < E <= resolved (or never resolved).

    The periods where an incident counts are a contiguous run [first, after); counted with +1/-1 marks
    and a cumulative sum along the periods.
    """
    ends = grid.effective_ends  # non-decreasing
    first = np.searchsorted(ends, failures["opened"].to_numpy(), side="right")
    after = np.where(
        failures["is_open"].to_numpy(), grid.n_periods, np.searchsorted(ends, failures["resolved"].to_numpy(), "right")
    )
    service = failures["service"].to_numpy()
    width = grid.n_periods + 1
    marks = np.bincount(service * width + first, minlength=grid.n_services * width) - np.bincount(
        service * width + after, minlength=grid.n_services * width
    )
    count = _with_all(np.cumsum(marks.reshape(grid.n_services, width), axis=1)[:, :-1])
    return _Cells(_null_unless(records.reporting_incidents, count), count)


def _outages(grid: _Grid, records: _Records) -> pd.DataFrame:
    """Merged failure-incident intervals per service [start, end); an open incident runs to as_of."""
    failures = records.incidents[records.incidents["failure"]]
    service, start, end = merge_intervals(
        failures["service"].to_numpy(),
        failures["opened"].to_numpy(),
        np.where(failures["is_open"].to_numpy(), grid.as_of, failures["resolved"].to_numpy()),
    )
    return pd.DataFrame({"service": service, "start": start, "end": end})


def _outage_metrics(grid: _Grid, outages: pd.DataFrame, monitored: np.ndarray) -> dict[str, _Cells]:
    """mtbf and availability of the monitored services (per service bools); the others are null with
    sample_size 0 and stay out of the `all` rows, whatever incidents they have.
    """
    service = outages["service"].to_numpy()
    # Outage ends never pass as_of, so clipping to the full period is clipping to its effective part.
    outage, period, overlap = spread_over_periods(
        outages["start"].to_numpy(), outages["end"].to_numpy(), grid.starts, grid.ends
    )
    watched = monitored[:, None]
    downtime = _counts(grid, service[outage], period, overlap.astype(float)) / _HOUR_NS
    overlapping = np.where(watched, _counts(grid, service[outage], period), 0)
    begun = np.where(watched, _counts(grid, service, grid.period_of(outages["start"].to_numpy())), 0)
    uptime = np.where(watched, grid.effective_hours - downtime, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mtbf = np.where(begun > 0, uptime / begun, np.nan)
        mtbf_all = np.where(begun.sum(axis=0) > 0, uptime.sum(axis=0) / begun.sum(axis=0), np.nan)
        availability = np.where(watched, 100.0 * uptime / grid.effective_hours, np.nan)
    no_monitored = np.full(grid.n_periods, np.nan)
    availability_all = availability[monitored].mean(axis=0) if monitored.any() else no_monitored
    return {
        "mtbf": _Cells(_with_all(mtbf, mtbf_all), _with_all(begun)),
        "availability": _Cells(_with_all(availability, availability_all), _with_all(overlapping)),
    }


def _rework(grid: _Grid, records: _Records, outages: pd.DataFrame) -> dict[str, _Cells]:
    """Unplanned: deployed inside a merged outage of its service, or implementing an emergency change."""
    deployments = records.production[records.production["final"]]
    service = deployments["service"].to_numpy()
    at = deployments["at"].to_numpy()
    outage = _asof_positions(
        service, at, outages["service"].to_numpy(), outages["start"].to_numpy(), direction="backward"
    )
    matched = outage >= 0
    during_outage = np.zeros(len(at), dtype=bool)
    during_outage[matched] = at[matched] < outages["end"].to_numpy()[outage[matched]]
    unplanned = during_outage | deployments["emergency"].to_numpy()
    return {"deployment_rework_rate": _percent_of(grid, service, grid.period_of(at), unplanned)}


# ---------------------------------------------------------------------------------------------
# Output.


def _rows(grid: _Grid, grain: str, cells: dict[str, _Cells]) -> pd.DataFrame:
    n_rows = grid.n_services + 1
    services = np.repeat(np.array([*grid.names, ALL_SERVICES], dtype=object), grid.n_periods)
    starts = np.tile(grid.starts, n_rows)
    ends = np.tile(grid.ends, n_rows)
    frames = []
    for metric, definition in METRICS.items():
        metric_cells = cells[metric]
        frames.append(
            pd.DataFrame(
                {
                    "metric": metric,
                    "service": services,
                    "grain": grain,
                    "period_start": _utc_stamps(starts),
                    "period_end": _utc_stamps(ends),
                    "value": np.where(grid.live, metric_cells.value, np.nan).ravel().astype(np.float64),
                    "unit": definition.unit,
                    "sample_size": np.where(grid.live, metric_cells.size, 0).ravel().astype(np.int64),
                }
            )
        )
    result = pd.concat(frames, ignore_index=True)
    return result.sort_values(["metric", "service", "period_start"], kind="stable", ignore_index=True)


def _utc_stamps(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")


def _empty_result() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "metric": pd.Series([], dtype=object),
            "service": pd.Series([], dtype=object),
            "grain": pd.Series([], dtype=object),
            "period_start": pd.Series([], dtype="datetime64[ns, UTC]"),
            "period_end": pd.Series([], dtype="datetime64[ns, UTC]"),
            "value": pd.Series([], dtype=np.float64),
            "unit": pd.Series([], dtype=object),
            "sample_size": pd.Series([], dtype=np.int64),
        }
    )
