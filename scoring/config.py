"""The scoring part of `scorecard.yaml` as pydantic models — `scorecard:` and `metrics:` — and the config kit
every section uses: the `Model` base (unknown keys are errors), the value types, `ConfigError` and
`format_errors`, which writes one `path: message` line per problem with the path in the file's own
terms (`scorecard.perspectives[1].objectives[0].kpis[2].target: field required`).

The whole file (warehouse, sources, services, metrics, scorecard) is composed and parsed in
pipelines/config.py; each source's section lives with its connector. This module only validates data.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from scoring import bands
from scoring.dictionary import MANUAL_PREFIX, METRICS, is_known_metric

Direction = Literal["higher_is_better", "lower_is_better"]
Rollup = Literal["mean", "weighted_mean", "min", "max"]
ReviewPeriod = Literal["day", "week", "month"]
Severity = Literal["sev1", "sev2", "sev3", "sev4", "sev5"]

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"'{value}' is not an id: use letters, digits and _ . : - (no spaces)")
    return value


def _env_var_name(value: str) -> str:
    # Upper-case names only, so a pasted token (ghp_..., mostly lower case) is refused; never echo it.
    if not _ENV_VAR_NAME.match(value):
        raise ValueError("must name an environment variable (upper case, e.g. GITHUB_TOKEN), not hold a secret")
    return value


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an unbalanced [ of an IPv6 host
        usable = False
    if not usable:
        shown = value if "@" not in value else "a URL with user info"  # never echo a password pasted into it
        raise ValueError(f"must be an http(s) URL with a host, got '{shown}'")
    if "@" in parts.netloc:
        raise ValueError("must not carry a user or password: the source's *_env keys name the variables holding them")
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
BaseUrl = Annotated[Text, AfterValidator(_http_url)]  # a vendor's API root: http(s)://host[/path]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_identifier)]
EnvVarName = Annotated[str, AfterValidator(_env_var_name)]
Weight = Annotated[FiniteFloat, Field(ge=0)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$")
_DURATION_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ConfigError(Exception):
    """An invalid configuration; `.errors` holds one `path: message` line per problem."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class Model(BaseModel):
    """A config section: unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


# --- metrics -----------------------------------------------------------------------------


def _parse_duration(value: Any) -> Any:
    """`30m`, `24h`, `2d`, `1w`, or a number of hours; anything else is left to pydantic."""
    if isinstance(value, bool):  # YAML's yes/no/true/false: pydantic would take True as one second
        raise ValueError(f"{str(value).lower()} is not a duration like 30m, 24h, 2d or 1w")
    if isinstance(value, int | float):
        return _duration(hours=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"'{value}' is not a duration like 30m, 24h, 2d or 1w")
        return _duration(**{_DURATION_UNITS[match[2]]: float(match[1])})
    return value


def _duration(**amount: float) -> timedelta:
    """A timedelta that pandas can hold too; NaN, infinity and absurd lengths are config errors."""
    try:
        window = timedelta(**amount)
        pd.Timedelta(window)
    except (OverflowError, ValueError):
        raise ValueError("not a usable duration: too long, or not a finite number") from None
    return window


class MetricsConfig(Model):
    failure_severities: list[Severity] = Field(default=["sev1", "sev2"], min_length=1)
    change_failure_window: Annotated[timedelta, BeforeValidator(_parse_duration)] = timedelta(hours=24)
    production_environments: list[Text] = Field(default=["production", "prod"], min_length=1)

    @field_validator("change_failure_window")
    @classmethod
    def _positive(cls, window: timedelta) -> timedelta:
        if window <= timedelta(0):
            raise ValueError("must be longer than zero")
        return window

    @property
    def window(self) -> pd.Timedelta:
        """`change_failure_window` as a pandas Timedelta."""
        return pd.Timedelta(self.change_failure_window)


# --- the scorecard -----------------------------------------------------------------------


EscalationTrigger = Literal["red", "drop", "no_data"]
ESCALATION_TRIGGERS: tuple[EscalationTrigger, ...] = ("red", "drop", "no_data")


class EscalationRule(Model):
    """When a KPI escalates to its owner: entering red, falling a status band (e.g. green to amber), or having
    no data for `no_data_periods` review periods in a row. Each fires once per transition."""

    enabled: bool = True
    triggers: list[EscalationTrigger] = Field(default=list(ESCALATION_TRIGGERS), min_length=1)
    no_data_periods: int = Field(default=2, ge=1)


def _false_is_off(value: Any) -> Any:
    return {"enabled": False} if value is False else value


# `escalation: false` is short for `escalation: {enabled: false}`.
Escalation = Annotated[EscalationRule, BeforeValidator(_false_is_off)]


class KpiScope(Model):
    service: Text  # a service under `services:`, or "all" for the organisation


class Kpi(Model):
    id: Identifier
    name: Text
    metric: Text
    scope: KpiScope | None = None
    unit: Text | None = None  # default: the metric dictionary's unit for a derived metric
    direction: Direction | None = None  # default: the metric dictionary's; required for manual:
    baseline: FiniteFloat
    threshold: FiniteFloat | None = None
    target: FiniteFloat
    stretch: FiniteFloat | None = None
    weight: Weight = 1.0
    owner: Text | None = None
    clamp: bool | None = None  # None: the scorecard's clamp
    indicator: Literal["leading", "lagging"] = "lagging"
    escalation: Escalation | None = None  # None: the scorecard's rule
    description: str | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if not is_known_metric(metric):
            raise ValueError(f"unknown metric '{metric}' (known: {', '.join(sorted(METRICS))}; or manual:<name>)")
        return metric

    @model_validator(mode="after")
    def _consistent(self) -> Kpi:
        problems = self._fill_from_dictionary() or self._ordering_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _fill_from_dictionary(self) -> list[str]:
        definition = METRICS.get(self.metric)
        if definition is None:
            return [] if self.direction else ["direction: field required for a manual metric"]
        if self.direction and self.direction != definition.direction:
            return [f"direction: metric '{self.metric}' is {definition.direction} (metric dictionary)"]
        self.direction = self.direction or definition.direction
        self.unit = self.unit or definition.unit
        return []

    def _ordering_problems(self) -> list[str]:
        if self.target == self.baseline:
            return [f"target: must differ from baseline {self.baseline:g}"]
        sign = 1 if self.direction == "higher_is_better" else -1
        below, above = ("below", "above") if sign == 1 else ("above", "below")
        problems = []
        if sign * self.baseline > sign * self.target:
            problems.append(f"baseline: must be {below} target {self.target:g} for {self.direction}")
        problems += self._threshold_problems(sign, below, above)
        if self.stretch is not None and sign * self.stretch < sign * self.target:
            problems.append(f"stretch: must not be {below} target {self.target:g} for {self.direction}")
        return problems

    def _threshold_problems(self, sign: int, below: str, above: str) -> list[str]:
        """Between baseline and target, both included: beyond the baseline, amber could score below 0."""
        if self.threshold is None:
            return []
        if sign * self.threshold > sign * self.target:
            return [f"threshold: must not be {above} target {self.target:g} for {self.direction}"]
        # Unchecked while the baseline is out of order itself: its own line names the cause.
        if sign * self.baseline < sign * self.target and sign * self.threshold < sign * self.baseline:
            return [f"threshold: must not be {below} baseline {self.baseline:g} for {self.direction}"]
        return []

    @property
    def is_manual(self) -> bool:
        return self.metric.startswith(MANUAL_PREFIX)

    @property
    def service(self) -> str:
        """The service the KPI reads metric rows for ("all": the organisation row)."""
        return self.scope.service if self.scope else "all"


class Objective(Model):
    id: Identifier
    name: Text
    weight: Weight = 1.0
    rollup: Rollup = "weighted_mean"
    owner: Text | None = None
    initiatives: list[Text] = []
    supports: list[Identifier] = []  # objectives this one is a cause of (the strategy map's cause → effect)
    description: str | None = None
    kpis: list[Kpi] = Field(min_length=1)


class Perspective(Model):
    id: Identifier
    name: Text
    weight: Weight = 1.0
    rollup: Rollup = "weighted_mean"
    owner: Text | None = None
    description: str | None = None
    objectives: list[Objective] = Field(min_length=1)


class ScorecardConfig(Model):
    name: Text
    review_period: ReviewPeriod = "month"
    amber_performance: float = Field(default=0.7, gt=0, lt=1)
    clamp: bool = False
    trend_tolerance: Annotated[FiniteFloat, Field(ge=0)] = 0.0
    dora_report_year: int | None = Field(default=None, validate_default=True)
    owner: Text | None = None
    description: str | None = None
    escalation: Escalation = EscalationRule()  # every KPI's rule unless the KPI sets its own
    perspectives: list[Perspective] = Field(min_length=1)

    @field_validator("dora_report_year")
    @classmethod
    def _known_year(cls, year: int | None) -> int:
        if year is None:
            return bands.newest_year()
        if year not in bands.available_years():
            raise ValueError(f"no DORA bands for {year} (available: {', '.join(map(str, bands.available_years()))})")
        return year

    @model_validator(mode="after")
    def _unique_ids(self) -> ScorecardConfig:
        problems = duplicate_id_problems(self) or supports_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def kpis_with_paths(self) -> Iterator[tuple[str, Kpi]]:
        """Every KPI with its path relative to the scorecard (`perspectives[0].objectives[1].kpis[2]`)."""
        yield from _with_paths(self, "kpis")

    def iter_kpis(self) -> Iterator[tuple[Perspective, Objective, Kpi]]:
        """Every KPI with its objective and perspective, in file order."""
        for perspective in self.perspectives:
            for objective in perspective.objectives:
                for kpi in objective.kpis:
                    yield perspective, objective, kpi

    def escalation_for(self, kpi: Kpi) -> EscalationRule | None:
        """The KPI's escalation rule (its own, else the scorecard's); None when it never escalates."""
        rule = kpi.escalation or self.escalation
        return rule if rule.enabled else None

    def objectives(self) -> Iterator[tuple[Perspective, Objective]]:
        """Every objective with its perspective, in file order."""
        for perspective in self.perspectives:
            for objective in perspective.objectives:
                yield perspective, objective

    def kpi(self, kpi_id: str) -> Kpi:
        for _, _, kpi in self.iter_kpis():
            if kpi.id == kpi_id:
                return kpi
        raise KeyError(kpi_id)

    @property
    def slug(self) -> str:
        """The scorecard's node id: its name in lower case, runs of other characters as `_`."""
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_") or "scorecard"


# The cross-cutting checks walk models and raw dicts alike, so that parse_config can still
# report duplicates and unknown services when other parts of the file fail validation.


def _get(node: Any, key: str) -> Any:
    return node.get(key) if isinstance(node, dict) else getattr(node, key, None)


def _children(node: Any, key: str) -> list[Any]:
    children = _get(node, key)
    return children if isinstance(children, list) else []


def _with_paths(scorecard: Any, level: str) -> Iterator[tuple[str, Any]]:
    """(path relative to the scorecard, node) for every perspective, objective or KPI."""
    for p, perspective in enumerate(_children(scorecard, "perspectives")):
        if level == "perspectives":
            yield f"perspectives[{p}]", perspective
            continue
        for o, objective in enumerate(_children(perspective, "objectives")):
            path = f"perspectives[{p}].objectives[{o}]"
            if level == "objectives":
                yield path, objective
                continue
            for k, kpi in enumerate(_children(objective, "kpis")):
                yield f"{path}.kpis[{k}]", kpi


def duplicate_id_problems(scorecard: Any) -> list[str]:
    """Lines `relative.path.id: duplicate ...` for ids used twice (ids are unique per level)."""
    problems = []
    for level, kind in (("perspectives", "perspective"), ("objectives", "objective"), ("kpis", "KPI")):
        first_path: dict[str, str] = {}
        for path, node in _with_paths(scorecard, level):
            node_id = _get(node, "id")
            if not isinstance(node_id, str):
                continue
            node_id = node_id.strip()
            if node_id in first_path:
                problems.append(
                    f"{path}.id: duplicate {kind} id '{node_id}' (first at scorecard.{first_path[node_id]}.id)"
                )
            else:
                first_path.setdefault(node_id, path)
    return problems


def supports_problems(scorecard: Any) -> list[str]:
    """Lines `<path>.supports: ...` for a cause → effect edge to an objective that does not exist, or to itself."""
    objectives = list(_with_paths(scorecard, "objectives"))
    known = [str(_get(node, "id")).strip() for _, node in objectives if isinstance(_get(node, "id"), str)]
    problems = []
    for path, objective in objectives:
        own_id = str(_get(objective, "id")).strip()
        for index, target in enumerate(_children(objective, "supports")):
            target = str(target).strip()
            if target == own_id:
                problems.append(f"{path}.supports[{index}]: objective '{own_id}' cannot support itself")
            elif target not in known:
                problems.append(f"{path}.supports[{index}]: unknown objective '{target}' (objectives: "
                                f"{', '.join(known)})")
    return problems


def scope_problems(scorecard: Any, service_names: list[str]) -> list[str]:
    """Lines `scorecard.<path>.scope.service: unknown service ...` when services are listed."""
    if not service_names:
        return []
    problems = []
    for path, kpi in _with_paths(scorecard, "kpis"):
        service = _get(_get(kpi, "scope"), "service") if _get(kpi, "scope") is not None else None
        if isinstance(service, str) and service.strip() not in [*service_names, "all"]:
            problems.append(
                f"scorecard.{path}.scope.service: unknown service '{service.strip()}' "
                f"(services: {', '.join(service_names)})"
            )
    return problems


_LEADING_PATH = re.compile(r"^([A-Za-z_][\w]*(?:\[\d+\])*(?:\.[A-Za-z_][\w]*(?:\[\d+\])*)*): (.*)$", re.DOTALL)


# What PyYAML lets through as a ValueError: int() of a number longer than Python converts.
TOO_LONG_NUMBER = f"a number of more than {sys.get_int_max_str_digits():,} digits: write a shorter one"


def yaml_problem(error: yaml.YAMLError) -> str:
    """Where and what, without PyYAML's echo of the offending line (it may hold a pasted secret)."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return " ".join(str(error).split())
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = "; ".join(part for part in (error.context, error.problem) if part)
    return where + (" ".join(what.split()) or "syntax error")


def format_errors(error: ValidationError) -> list[str]:
    """One `path: message` line per problem, in the file's own path notation."""
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        for message in _messages(item):
            lines.append(_with_leading_path(_path(item["loc"]), message))
    return list(dict.fromkeys(lines))


def _messages(item: dict[str, Any]) -> list[str]:
    if item["type"] == "extra_forbidden":
        return ["unknown key"]
    if item["type"] == "model_type":  # pydantic names the model class; say what the file needs
        return ["expected a mapping of keys to values (a section)"]
    message = item["msg"].removeprefix("Value error, ")
    return [line[:1].lower() + line[1:] for line in message.split("\n") if line.strip()]


def _path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "[key]":
            path += f".{part}" if path else str(part)
    return path


def _with_leading_path(path: str, message: str) -> str:
    """Move a validator's leading `field: ` from the message onto the path."""
    match = _LEADING_PATH.match(message)
    if match:
        path = f"{path}.{match[1]}" if path else match[1]
        message = match[2]
    return f"{path or 'config'}: {message}"
