"""Synthetic demo data: incidents, changes, deployments and pull requests for a set of services.

`generate_dataset(spec)` returns raw canonical rows, every value a string as it would appear in
an exported CSV, deterministic per `DatasetSpec`. `write_dataset` writes them as CSV files; the
vendor API simulator serves the same frames in vendor shapes.

How the data is made:
- every service gets a delivery profile (`PROFILES`): two elite services deploy several times a
  day and rarely fail, the last two struggle (weekly deploys, more failures, long incidents);
- per service: production deployments on working hours (some staged first), change requests
  for a share of them, incidents opened within hours after a deployment, after a failed change
  (ServiceNow, with `caused_by_change`) or out of the blue, a few overlapping, hotfixes that
  implement an `emergency` change while an incident is open, and the pull requests each
  successful production deployment ships (the last one's merge commit is the deployment sha);
- two or three incidents are still open at the window's end;
- times are seconds since the window start while generated, then rendered as ISO 8601 text
  with a per-row UTC offset (mostly `Z`);
- the export then gets what real exports have: an older copy of a few records (a deployment
  still in_progress, an incident not yet resolved, ...) and `bad_rows` rows per kind that
  `normalise_frame` rejects, on the columns listed in `BAD_ROW_COLUMNS`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.records import KINDS, SCHEMAS

SERVICES = (
    "checkout", "payments", "search", "catalog", "accounts",
    "notifications", "inventory", "shipping", "recommendations", "reporting",
)
MAX_SERVICES = 10_000  # twenty times a platform of 500 services; more is a typo, not a data set
GITHUB_ORG = "acme"
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
DUPLICATES_PER_KIND = 3
OFFSET_MINUTES = np.array([0, 120, -300])
OFFSET_SHARES = [0.8, 0.12, 0.08]
SEVERITY_SHARES = {"sev1": 0.05, "sev2": 0.17, "sev3": 0.4, "sev4": 0.38}
INCIDENT_TITLES = (
    "elevated 5xx error rate", "p99 latency above SLO", "health checks failing",
    "queue backlog growing", "database connection pool exhausted", "pods restarting (OOMKilled)",
    "upstream timeouts", "error budget burn rate alert", "disk usage above 90%",
    "TLS handshake failures",
)


def service_names(count: int) -> tuple[str, ...]:
    """The first `count` of SERVICES, then `service-11`, `service-12`, ... beyond them (1 to MAX_SERVICES)."""
    if not 1 <= count <= MAX_SERVICES:
        raise ValueError(f"the number of services must be between 1 and {MAX_SERVICES:,}, not {count:,}")
    extra = tuple(f"service-{n}" for n in range(len(SERVICES) + 1, count + 1))
    return (SERVICES + extra)[:count]


@dataclass(frozen=True)
class Profile:
    """How a service delivers and fails; rates are per working day unless said otherwise."""

    name: str
    deploys_per_day: float  # production deployments per weekday (weekends 15% of that)
    deploy_failure_rate: float  # production deployments ending in failure/error
    incident_after_deploy: float  # share of successful production deployments followed by an incident
    incidents_per_day: float  # incidents not tied to any change, per calendar day
    incident_median_minutes: float
    coding_median_hours: float  # first commit -> pull request opened
    review_median_hours: float  # pull request opened -> merged
    prs_per_deploy: float
    change_request_share: float  # production deployments that carry a change request
    normal_change_share: float  # of those, `normal` rather than `standard`
    hotfix_share: float  # incidents fixed by a hotfix implementing an emergency change


PROFILES = {
    "elite": Profile("elite", 6.0, 0.02, 0.02, 0.08, 20, 1.5, 1.5, 1.2, 0.1, 0.2, 0.1),
    "steady": Profile("steady", 1.5, 0.08, 0.05, 0.15, 60, 6, 14, 2.0, 0.5, 0.5, 0.25),
    "struggling": Profile("struggling", 0.25, 0.2, 0.2, 0.35, 240, 30, 50, 5.0, 1.0, 0.8, 0.5),
}


def service_profiles(services: Iterable[str]) -> dict[str, Profile]:
    """The first two services are elite, the last two struggling (from the third on), the rest steady."""
    services = tuple(services)
    last_steady = max(2, len(services) - 2)

    def profile(position: int) -> Profile:
        if position < 2:
            return PROFILES["elite"]
        return PROFILES["struggling"] if position >= last_steady else PROFILES["steady"]

    return {service: profile(position) for position, service in enumerate(services)}


@dataclass(frozen=True)
class DatasetSpec:
    seed: int = 7
    days: int = 90
    end: pd.Timestamp = field(kw_only=True)  # exclusive, UTC (a naive value is taken as UTC); no wall-clock default
    services: tuple[str, ...] = SERVICES
    bad_rows: int = 5  # per kind, at most (fewer only if a tiny dataset has too few rows to spoil)

    def __post_init__(self) -> None:
        end = pd.Timestamp(self.end)
        object.__setattr__(self, "end", end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC"))
        object.__setattr__(self, "services", tuple(self.services))
        if self.days < 1:
            raise ValueError(f"days must be at least 1, not {self.days}")
        if self.bad_rows < 0:
            raise ValueError(f"bad_rows cannot be negative ({self.bad_rows})")
        if not self.services or len(set(self.services)) != len(self.services):
            raise ValueError("services must be a non-empty tuple of distinct names")

    @property
    def start(self) -> pd.Timestamp:
        return self.end - pd.Timedelta(days=self.days)


@dataclass(frozen=True)
class _Window:
    """The spec's [start, end) in seconds from start; every generated time lies in [0, last]."""

    start: pd.Timestamp
    seconds: float
    day_starts: np.ndarray  # seconds from `start` to each UTC midnight of a day the window touches
    weekend: np.ndarray

    @property
    def last(self) -> float:
        """The last whole second before the end: times are rendered to whole seconds, so none reaches the end."""
        return self.seconds - 1.0

    @classmethod
    def of(cls, spec: DatasetSpec) -> _Window:
        midnights = pd.date_range(spec.start.normalize(), spec.end, freq="D", inclusive="left")
        return cls(
            start=spec.start,
            seconds=spec.days * DAY,
            day_starts=(midnights - spec.start).total_seconds().to_numpy(),
            weekend=np.asarray(midnights.day_of_week >= 5),
        )


# ---------------------------------------------------------------------------------------------
# Public API


def generate_dataset(spec: DatasetSpec) -> dict[str, pd.DataFrame]:
    """Raw canonical rows per kind (all strings), with a few stale duplicates and bad rows."""
    window = _Window.of(spec)
    profiles = service_profiles(spec.services)
    per_service = [_service_records(spec, window, service, profiles[service]) for service in spec.services]
    records = {kind: pd.concat([part[kind] for part in per_service], ignore_index=True) for kind in KINDS}
    still_open = _open_incidents(spec, window, profiles)
    records["incidents"] = pd.concat([records["incidents"], still_open], ignore_index=True)
    records = _assign_ids(np.random.default_rng([spec.seed, 1]), records)
    return {kind: _export(spec, window, kind, records[kind]) for kind in KINDS}


def generate_manual_values(spec: DatasetSpec, kpi_ranges: Mapping[str, tuple[float, float]]) -> pd.DataFrame:
    """Plausible monthly values (kpi_id, value, period YYYY-MM) for manual KPIs over the spec's months.

    `kpi_ranges` maps each KPI id to (baseline, best) — its baseline and its stretch (or target):
    each KPI wanders between the two, mostly nearer the good end, so a demo shows every status.
    """
    last_instant = spec.end - pd.Timedelta(seconds=1)
    months = pd.period_range(spec.start.tz_localize(None), last_instant.tz_localize(None), freq="M")
    frames = [_manual_series(spec.seed, kpi_id, bounds, months) for kpi_id, bounds in kpi_ranges.items()]
    if not frames:
        return pd.DataFrame({"kpi_id": pd.Series([], dtype=str), "value": [], "period": pd.Series([], dtype=str)})
    return pd.concat(frames, ignore_index=True)


def write_dataset(frames: dict[str, pd.DataFrame], out_dir: Path) -> dict[str, Path]:
    """Write each kind as `<kind>.csv` (header and rows, no index) under out_dir; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, frame in frames.items():
        paths[kind] = out_dir / f"{kind}.csv"
        frame.to_csv(paths[kind], index=False)
    return paths


# ---------------------------------------------------------------------------------------------
# Manual KPI values

def _manual_series(seed: int, kpi_id: str, bounds: tuple[float, float], months: pd.PeriodIndex) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 6, zlib.crc32(kpi_id.encode())])
    baseline, best = bounds
    span = best - baseline
    progress = rng.uniform(0.45, 0.85) + np.cumsum(rng.normal(0, 0.08, len(months)))
    values = baseline + span * np.clip(progress, -0.1, 1.05)
    decimals = int(np.clip(2 - np.floor(np.log10(abs(span) or 1.0)), 0, 3))
    return pd.DataFrame({"kpi_id": kpi_id, "value": np.round(values, decimals), "period": months.strftime("%Y-%m")})


# ---------------------------------------------------------------------------------------------
# Per-service records (typed: times are float seconds since the window start, NaN when empty)


def _service_records(spec: DatasetSpec, window: _Window, service: str, profile: Profile) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng([spec.seed, 100, zlib.crc32(service.encode())])
    deployments = _deployments(rng, window, service, profile)
    changes = _deploy_changes(rng, window, service, profile, deployments)
    incidents = _incidents(rng, window, service, profile, deployments, changes)
    fix_changes, fix_deployments = _hotfixes(rng, window, service, profile, incidents)
    deployments = pd.concat([deployments, fix_deployments], ignore_index=True)
    return {
        "incidents": incidents,
        "changes": pd.concat([changes, fix_changes], ignore_index=True),
        "deployments": deployments,
        "pull_requests": _pull_requests(rng, window, service, profile, deployments),
    }


def _frame(kind: str, columns: dict) -> pd.DataFrame:
    """A typed frame with the kind's canonical columns; scalars are broadcast, absent columns empty."""
    size = max((len(v) for v in columns.values() if np.ndim(v)), default=0)
    data = {}
    for col in SCHEMAS[kind]:
        value = columns.get(col.name, np.nan if col.kind == "timestamp" else None)
        value = value if np.ndim(value) else [value] * size
        data[col.name] = np.asarray(value, dtype=float) if col.kind == "timestamp" else np.asarray(value, dtype=object)
    return pd.DataFrame(data)


def _working_times(rng: np.random.Generator, window: _Window, per_weekday: float) -> np.ndarray:
    """Sorted times around European office hours (UTC), weekends at 15% of a weekday."""
    weights = np.where(window.weekend, 0.15, 1.0)
    count = rng.poisson(per_weekday * weights.sum())
    day = rng.choice(len(weights), size=count, p=weights / weights.sum())
    hour = np.clip(rng.normal(13.5, 2.5, count), 6.0, 22.0)
    times = window.day_starts[day] + hour * HOUR
    return np.sort(times[(times >= 0) & (times <= window.last)])


def _lognormal(rng: np.random.Generator, median: float, sigma: float, size: int, low: float, high: float) -> np.ndarray:
    return np.clip(median * np.exp(sigma * rng.standard_normal(size)), low, high)


def _shas(rng: np.random.Generator, count: int) -> np.ndarray:
    raw = rng.integers(0, 256, size=(count, 20), dtype=np.uint8)
    return np.array([row.tobytes().hex() for row in raw], dtype=object)


def _soon_after(rng: np.random.Generator, window: _Window, times: np.ndarray, low: float, high: float) -> np.ndarray:
    """`times` plus a lag of low..high minutes, not past the window's last second."""
    return np.minimum(times + rng.uniform(low, high, len(times)) * MINUTE, window.last)


def _deployments(rng: np.random.Generator, window: _Window, service: str, profile: Profile) -> pd.DataFrame:
    production = _working_times(rng, window, profile.deploys_per_day)
    failure = profile.deploy_failure_rate
    production_status = rng.choice(
        ["success", "failure", "error"], size=len(production), p=[1 - failure, 0.75 * failure, 0.25 * failure]
    )
    production_sha = _shas(rng, len(production))
    staged = np.flatnonzero(rng.random(len(production)) < 0.35)
    staging = production[staged] - rng.uniform(15, 120, len(staged)) * MINUTE
    staged, staging = staged[staging >= 0], staging[staging >= 0]
    staging_status = rng.choice(["success", "failure"], size=len(staging), p=[0.95, 0.05])
    deployed = np.concatenate([production, staging])
    return _frame("deployments", {
        "source": "github",
        "service": service,
        "environment": ["production"] * len(production) + ["staging"] * len(staging),
        "sha": np.concatenate([production_sha, production_sha[staged]]),
        "deployed_at": deployed,
        "status": np.concatenate([production_status, staging_status]),
        "updated_at": _soon_after(rng, window, deployed, 1, 15),
    })


def _deploy_changes(
    rng: np.random.Generator, window: _Window, service: str, profile: Profile, deployments: pd.DataFrame
) -> pd.DataFrame:
    """Change requests raised for a share of production deployments; a few never implemented."""
    production = deployments[deployments["environment"] == "production"]
    chosen = production[rng.random(len(production)) < profile.change_request_share]
    count = len(chosen)
    deployed = chosen["deployed_at"].to_numpy()
    deploy_failed = (chosen["status"] != "success").to_numpy()
    outcome = np.where(
        deploy_failed,
        rng.choice(["failed", "backed_out"], size=count),
        np.where(rng.random(count) < 0.03, "backed_out", "successful"),
    )
    cancelled = rng.random(count) < 0.04
    raised = np.maximum(deployed - rng.uniform(1, 48, count) * HOUR, 0)
    return _frame("changes", {
        "source": "servicenow",
        "source_id": [f"{service}:c{i}" for i in range(count)],
        "service": service,
        "type": np.where(rng.random(count) < profile.normal_change_share, "normal", "standard"),
        "implemented_at": np.where(cancelled, np.nan, deployed),
        "outcome": np.where(cancelled, "", outcome),
        "updated_at": np.where(cancelled, raised, _soon_after(rng, window, deployed, 5, 120)),
    })


def _incidents(
    rng: np.random.Generator,
    window: _Window,
    service: str,
    profile: Profile,
    deployments: pd.DataFrame,
    changes: pd.DataFrame,
) -> pd.DataFrame:
    after_deploys = _opened_after_deploys(rng, profile, deployments)
    background = rng.uniform(0, window.last, rng.poisson(profile.incidents_per_day * window.seconds / DAY))
    after_changes, culprits = _opened_after_changes(rng, changes)
    opened = np.concatenate([after_deploys, background, after_changes])
    caused_by = np.concatenate([np.full(len(after_deploys) + len(background), None, dtype=object), culprits])
    paged = np.where(rng.random(len(opened)) < 0.9, "pagerduty", "servicenow")
    source = np.where(pd.notna(caused_by), "servicenow", paged)
    inside = opened <= window.last
    incidents = _resolved_incidents(rng, window, service, profile, opened[inside], caused_by[inside], source[inside])
    return pd.concat([incidents, _overlapping(rng, window, service, profile, incidents)], ignore_index=True)


def _opened_after_deploys(rng: np.random.Generator, profile: Profile, deployments: pd.DataFrame) -> np.ndarray:
    """Incident start times within hours after a successful production deploy, before the next one."""
    production = deployments[deployments["environment"] == "production"].sort_values("deployed_at")
    deployed = production["deployed_at"].to_numpy()
    until_next = np.minimum(np.diff(deployed, append=np.inf), 6 * HOUR)
    hit = (production["status"] == "success").to_numpy() & (rng.random(len(deployed)) < profile.incident_after_deploy)
    delay = np.maximum(rng.uniform(0.1, 0.8, hit.sum()) * until_next[hit], 2 * MINUTE)
    return deployed[hit] + delay


def _opened_after_changes(rng: np.random.Generator, changes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(start times, change ids) of incidents a change caused: half the failed ones, a few others."""
    implemented = changes["implemented_at"].to_numpy()
    failed = changes["outcome"].isin(["failed", "backed_out"]).to_numpy()
    hit = ~np.isnan(implemented) & (rng.random(len(changes)) < np.where(failed, 0.5, 0.03))
    opened = implemented[hit] + rng.uniform(5, 180, hit.sum()) * MINUTE
    return opened, changes["source_id"].to_numpy()[hit]


def _resolved_incidents(
    rng: np.random.Generator,
    window: _Window,
    service: str,
    profile: Profile,
    opened: np.ndarray,
    caused_by: np.ndarray | None,
    source: np.ndarray | str,
) -> pd.DataFrame:
    """Incidents with log-normal durations; one that would outlast the window ends before it."""
    count = len(opened)
    duration = _lognormal(rng, profile.incident_median_minutes * MINUTE, 1.1, count, 3 * MINUTE, 30 * HOUR)
    late = opened + duration > window.last
    duration = np.where(late, (window.last - opened) * rng.uniform(0.2, 0.9, count), duration)
    resolved = opened + duration
    source = np.broadcast_to(np.asarray(source, dtype=object), (count,))
    return _frame("incidents", {
        "source": source,
        "service": service,
        "severity": rng.choice(list(SEVERITY_SHARES), size=count, p=list(SEVERITY_SHARES.values())),
        "title": _titles(rng, service, count),
        "status": np.where(source == "servicenow", "Resolved", "resolved"),
        "opened_at": opened,
        "resolved_at": resolved,
        "caused_by_change": caused_by if caused_by is not None else None,
        "updated_at": _soon_after(rng, window, resolved, 1, 30),
    })


def _titles(rng: np.random.Generator, service: str, count: int) -> np.ndarray:
    return np.array([f"{service}: {title}" for title in rng.choice(INCIDENT_TITLES, size=count)], dtype=object)


def _overlapping(
    rng: np.random.Generator, window: _Window, service: str, profile: Profile, incidents: pd.DataFrame
) -> pd.DataFrame:
    """Second incidents (another alert on the same outage) opened while a long one is still open."""
    opened = incidents["opened_at"].to_numpy()
    duration = incidents["resolved_at"].to_numpy() - opened
    hit = (duration >= 30 * MINUTE) & (rng.random(len(opened)) < 0.06)
    second_opened = opened[hit] + rng.uniform(0.1, 0.6, hit.sum()) * duration[hit]
    return _resolved_incidents(rng, window, service, profile, second_opened, None, "pagerduty")


def _hotfixes(
    rng: np.random.Generator, window: _Window, service: str, profile: Profile, incidents: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(emergency changes, production deployments implementing them) made while an incident is open."""
    opened = incidents["opened_at"].to_numpy()
    duration = incidents["resolved_at"].to_numpy() - opened
    hit = (duration >= 30 * MINUTE) & (rng.random(len(opened)) < profile.hotfix_share)
    fixed_at = opened[hit] + rng.uniform(0.4, 0.85, hit.sum()) * duration[hit]
    count = len(fixed_at)
    change_ids = [f"{service}:e{i}" for i in range(count)]
    worked = rng.random(count) < 0.9
    changes = _frame("changes", {
        "source": "servicenow",
        "source_id": change_ids,
        "service": service,
        "type": "emergency",
        "implemented_at": fixed_at,
        "outcome": np.where(worked, "successful", "failed"),
        "updated_at": _soon_after(rng, window, fixed_at, 10, 90),
    })
    deployments = _frame("deployments", {
        "source": "github",
        "service": service,
        "environment": "production",
        "sha": _shas(rng, count),
        "deployed_at": fixed_at,
        "status": np.where(worked, "success", "failure"),
        "change_id": change_ids,
        "updated_at": _soon_after(rng, window, fixed_at, 1, 15),
    })
    return changes, deployments


def _pull_requests(
    rng: np.random.Generator, window: _Window, service: str, profile: Profile, deployments: pd.DataFrame
) -> pd.DataFrame:
    """PRs each successful production deploy ships (the last merged is its sha), plus a few unmerged."""
    shipped = deployments[(deployments["environment"] == "production") & (deployments["status"] == "success")]
    shipped = shipped.sort_values("deployed_at", kind="stable")
    merged, sha = _merges(rng, profile, shipped["deployed_at"].to_numpy(), shipped["sha"].to_numpy())
    unmerged_count = rng.poisson(0.08 * len(merged))
    created = np.concatenate([
        merged - _lognormal(rng, profile.review_median_hours * HOUR, 0.9, len(merged), 10 * MINUTE, 10 * DAY),
        rng.uniform(0, window.last, unmerged_count),
    ])
    merged = np.concatenate([merged, np.full(unmerged_count, np.nan)])
    first_commit = created - _lognormal(rng, profile.coding_median_hours * HOUR, 0.9, len(created), 5 * MINUTE, 7 * DAY)
    last_activity = np.where(np.isnan(merged), created + rng.uniform(1, 72, len(created)) * HOUR, merged)
    inside = first_commit >= 0
    order = np.argsort(created[inside], kind="stable")
    first_number = rng.integers(100, 3000)
    return _frame("pull_requests", {
        "source": "github",
        "source_id": [f"{GITHUB_ORG}/{service}#{first_number + n}" for n in range(inside.sum())],
        "service": service,
        "created_at": created[inside][order],
        "first_commit_at": first_commit[inside][order],
        "merged_at": merged[inside][order],
        "merge_commit_sha": np.concatenate([sha, np.full(unmerged_count, "", dtype=object)])[inside][order],
        "updated_at": _soon_after(rng, window, last_activity[inside][order], 1, 60),
    })


def _merges(
    rng: np.random.Generator, profile: Profile, deployed: np.ndarray, deploy_shas: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(merge times, merge commit shas) of the PRs each deployment ships, merged after the deployment
    before it; the last one merged is the deployment's own sha."""
    count = len(deployed)
    if count == 0:
        return np.array([]), np.array([], dtype=object)
    per_deploy = 1 + rng.poisson(max(profile.prs_per_deploy - 1.0, 0.0), count)
    deploy = np.repeat(np.arange(count), per_deploy)
    since_previous = np.minimum(np.diff(deployed, prepend=deployed[0] - DAY), 3 * DAY)
    merged = deployed[deploy] - rng.uniform(0.02, 0.98, len(deploy)) * since_previous[deploy]
    order = np.lexsort((merged, deploy))
    merged, deploy = merged[order], deploy[order]
    shas = _shas(rng, len(merged))
    last_of_deploy = np.cumsum(per_deploy) - 1
    shas[last_of_deploy] = deploy_shas
    return merged, shas


# ---------------------------------------------------------------------------------------------
# Whole-dataset steps: incidents still open at the end, vendor-style ids, export as text.


def _open_incidents(spec: DatasetSpec, window: _Window, profiles: dict[str, Profile]) -> pd.DataFrame:
    """Two or three failure incidents opened in the last hours and not resolved by the window's end."""
    rng = np.random.default_rng([spec.seed, 2])
    candidates = [service for service, profile in profiles.items() if profile.name != "elite"] or list(profiles)
    count = min(len(candidates), int(rng.integers(2, 4)))
    services = rng.choice(np.array(candidates, dtype=object), size=count, replace=False)
    opened = np.maximum(window.last - rng.uniform(0.5, 10, count) * HOUR, 0.0)
    return _frame("incidents", {
        "source": "pagerduty",
        "service": services,
        "severity": rng.choice(["sev1", "sev2"], size=count),
        "title": np.array([f"{service}: {title}" for service, title in
                           zip(services, rng.choice(INCIDENT_TITLES, size=count), strict=True)], dtype=object),
        "status": rng.choice(["triggered", "acknowledged"], size=count),
        "opened_at": opened,
        "updated_at": _soon_after(rng, window, opened, 1, 20),
    })


def _assign_ids(rng: np.random.Generator, records: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Vendor-style ids: ServiceNow INC/CHG numbers, PagerDuty incident ids, GitHub deployment ids.

    Change numbers follow implementation order; incidents' `caused_by_change` and deployments'
    `change_id` are rewritten to them.
    """
    changes = records["changes"]
    order = np.argsort(changes["implemented_at"].fillna(changes["updated_at"]).to_numpy(), kind="stable")
    numbers = np.empty(len(changes), dtype=np.int64)
    numbers[order] = 30_001 + np.arange(len(changes))
    change_ids = pd.Series(_numbered("CHG", numbers, 7), index=changes["source_id"].to_numpy())
    records["changes"] = changes.assign(source_id=change_ids.to_numpy())

    incidents = records["incidents"]
    from_servicenow = (incidents["source"] == "servicenow").to_numpy()
    pagerduty_ids = "Q" + pd.Series(rng.choice(36**6, size=len(incidents), replace=False)).map(_base36).str.zfill(6)
    incident_numbers = _numbered("INC", 10_001 + np.arange(len(incidents)), 7)
    records["incidents"] = incidents.assign(
        source_id=np.where(from_servicenow, incident_numbers, pagerduty_ids.to_numpy()),
        caused_by_change=incidents["caused_by_change"].map(change_ids).astype(object),
    )

    deployments = records["deployments"]
    deploy_order = np.argsort(deployments["deployed_at"].to_numpy(), kind="stable")
    deployment_ids = np.empty(len(deployments), dtype=np.int64)
    deployment_ids[deploy_order] = 1_200_000_000 + np.cumsum(rng.integers(1, 40, len(deployments)))
    records["deployments"] = deployments.assign(
        source_id=deployment_ids.astype(str).astype(object),
        change_id=deployments["change_id"].map(change_ids).astype(object),
    )
    return records


def _numbered(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return (prefix + pd.Series(numbers, dtype=np.int64).astype(str).str.zfill(width)).to_numpy(dtype=object)


def _base36(number: int) -> str:
    return np.base_repr(int(number), 36)


# How an export is spoiled: per kind, (column, spoiled text or a function of the row's text) in turn.
BAD_ROW_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "incidents": [("resolved_at", "before_start"), ("opened_at", "no_offset"), ("service", "legacy-billing"),
                  ("severity", "urgent"), ("opened_at", "")],
    "changes": [("implemented_at", "no_offset"), ("type", "urgent"), ("service", ""), ("outcome", "maybe"),
                ("implemented_at", "yesterday")],
    "deployments": [("deployed_at", "no_offset"), ("status", "exploded"), ("environment", ""),
                    ("deployed_at", "not-a-date"), ("service", "legacy-billing")],
    "pull_requests": [("merged_at", "before_start"), ("created_at", "no_offset"), ("service", ""),
                      ("created_at", "2026-13-45T25:00:00Z"), ("service", "legacy-billing")],
}
_START_COLUMN = {"incidents": "opened_at", "changes": "implemented_at", "deployments": "deployed_at",
                 "pull_requests": "created_at"}


def _export(spec: DatasetSpec, window: _Window, kind: str, typed: pd.DataFrame) -> pd.DataFrame:
    """The typed rows as exported text, with stale older copies of a few records and a few bad rows."""
    rng = np.random.default_rng([spec.seed, 3, zlib.crc32(kind.encode())])
    typed = typed.sort_values(_START_COLUMN[kind], kind="stable", ignore_index=True)
    stale = _stale_copies(rng, kind, typed)
    text = _as_text(rng, window, pd.concat([typed, stale], ignore_index=True))
    bad = _bad_rows(rng, kind, text.iloc[: len(typed)], spec.bad_rows)
    # Stale copies and bad rows sit at random places among the others, as in a real export.
    extras = len(stale) + len(bad)
    position = np.concatenate([np.arange(len(typed)), rng.uniform(0, max(len(typed), 1), extras)])
    exported = pd.concat([text, bad], ignore_index=True)
    return exported.iloc[np.argsort(position, kind="stable")].reset_index(drop=True)


def _stale_copies(rng: np.random.Generator, kind: str, typed: pd.DataFrame) -> pd.DataFrame:
    """Older versions of a few records, as an export taken mid-change holds them (updated_at earlier)."""
    start = _START_COLUMN[kind]
    settled_column = {"incidents": "resolved_at", "changes": "implemented_at", "deployments": "deployed_at",
                      "pull_requests": "merged_at"}[kind]
    eligible = typed[settled_column].notna().to_numpy()
    rows = np.flatnonzero(eligible)
    chosen = rng.choice(rows, size=min(DUPLICATES_PER_KIND, len(rows)), replace=False)
    stale = typed.iloc[np.sort(chosen)].copy()
    stale["updated_at"] = stale[start]
    if kind == "incidents":
        stale["resolved_at"], stale["status"] = np.nan, "acknowledged"
    elif kind == "changes":
        stale["outcome"] = "unknown"
    elif kind == "deployments":
        stale["status"] = "in_progress"
    else:
        stale["merged_at"], stale["merge_commit_sha"] = np.nan, ""
    return stale


def _as_text(rng: np.random.Generator, window: _Window, typed: pd.DataFrame) -> pd.DataFrame:
    """Every value as text; timestamps ISO 8601 in a per-row offset (mostly Z), empty when missing."""
    offset_minutes = rng.choice(OFFSET_MINUTES, size=len(typed), p=OFFSET_SHARES)
    suffix = pd.Series(np.where(offset_minutes == 0, "Z", _offset_text(offset_minutes)), index=typed.index)
    text = {}
    for column in typed.columns:
        values = typed[column]
        if values.dtype.kind == "f":
            local = window.start.tz_localize(None) + pd.to_timedelta((values + offset_minutes * MINUTE).round(), "s")
            text[column] = (local.dt.strftime("%Y-%m-%dT%H:%M:%S") + suffix).fillna("")
        else:
            text[column] = values.astype(object).where(values.notna(), "").astype(str)
    return pd.DataFrame(text)


def _offset_text(minutes: np.ndarray) -> np.ndarray:
    sign = np.where(minutes < 0, "-", "+")
    hours, rest = np.divmod(np.abs(minutes), 60)
    return (pd.Series(sign) + pd.Series(hours).astype(str).str.zfill(2) + ":"
            + pd.Series(rest).astype(str).str.zfill(2)).to_numpy(dtype=object)


def _bad_rows(rng: np.random.Generator, kind: str, text: pd.DataFrame, count: int) -> pd.DataFrame:
    """`count` copies of random good rows, each spoiled on one column from BAD_ROW_COLUMNS, with new ids."""
    count = min(count, len(text))
    bad = text.iloc[np.sort(rng.choice(len(text), size=count, replace=False))].copy().reset_index(drop=True)
    bad["source_id"] = bad["source_id"] + "-bad" + pd.Series(np.arange(count)).astype(str)
    spoilers = BAD_ROW_COLUMNS[kind]
    for row in range(count):  # at most `bad_rows` rows: a handful, not data that grows
        column, spoiled = spoilers[row % len(spoilers)]
        bad.loc[row, column] = _spoil(kind, bad.loc[row], column, spoiled)
    return bad


def _spoil(kind: str, row: pd.Series, column: str, spoiled: str) -> str:
    if spoiled == "no_offset":
        return re.sub(r"(Z|[+-]\d{2}:\d{2})$", "", row[column] or "2026-01-01T00:00:00Z")
    if spoiled == "before_start":
        start = pd.Timestamp(row[_START_COLUMN[kind]])
        return (start - pd.Timedelta(hours=2)).isoformat()
    return spoiled
