"""The HTML report's view model: plain data built from the warehouse's frames and the config, as of an instant.

`read_frames` reads what the report shows; `build_report` picks the review period (the latest complete one by
`as_of`, as `scorecard show` does, or the one holding a given day) and shapes everything the templates print:
figures already formatted (pipelines.views.formats), status words beside every colour, chart and map specs as
plain dicts. Nothing here renders HTML: pipelines/views/render.py does, with the Jinja2 templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.views.charts import kpi_trend_chart
from pipelines.views.formats import MISSING, format_fraction, format_number, status_word, trend_text
from pipelines.views.scorecard import in_config_order, latest_period, period_covers
from pipelines.views.strategy_map import StrategyMap, strategy_map
from scoring.completeness import complete_periods
from scoring.config import ScorecardConfig
from scoring.dictionary import METRICS, dictionary_frame
from scoring.review import OPEN_ACTION_STATUSES, overdue
from scoring.scorecard import KPI_STATUSES

if TYPE_CHECKING:
    from warehouse import Warehouse

TREND_PERIODS = 12  # periods in each KPI's trend chart, ending with the report's
OPERATIONS_WEEKS = 12  # weeks of each service's operational figures, ending with the report period
# The DORA and reliability figures of the weekly operational review, in this column order, with short headings
# (the dictionary's title is the column's tooltip; each figure carries its unit).
OPERATIONS_METRICS = {
    "deployment_frequency": "deploys", "lead_time_for_changes": "lead time", "change_failure_rate": "change fail.",
    "failed_deployment_recovery_time": "recovery", "deployment_rework_rate": "rework", "mttr": "MTTR",
    "availability": "availability", "mtbf": "MTBF",
}  # fmt: skip
BIGGEST_MOVES = 5  # KPIs listed under "biggest moves" in the summary
ORGANISATION = "all"


class ReportError(ValueError):
    """No report can be made: no scores yet, or no scores for the period asked for."""


@dataclass(frozen=True)
class ReportFrames:
    """The warehouse rows the report reads, the scorecard's own where a table holds several scorecards."""

    kpi_scores: pd.DataFrame
    node_scores: pd.DataFrame
    weekly_metrics: pd.DataFrame  # metric_values at grain week
    comments: pd.DataFrame
    actions: pd.DataFrame
    alerts: pd.DataFrame
    dictionary: pd.DataFrame


def read_frames(warehouse: Warehouse, scorecard: ScorecardConfig) -> ReportFrames:
    """Everything the report shows, from an open warehouse (reads only)."""

    def own(table: str) -> pd.DataFrame:
        rows = warehouse.read_table(table)
        return rows[rows["scorecard"] == scorecard.name].reset_index(drop=True)

    metric_values = warehouse.read_table("metric_values")
    dictionary = warehouse.read_table("metric_dictionary")
    kpi_scores, node_scores = in_config_order(scorecard, own("kpi_scores"), own("node_scores"))
    return ReportFrames(
        kpi_scores=kpi_scores,
        node_scores=node_scores,
        weekly_metrics=metric_values[metric_values["grain"] == "week"].reset_index(drop=True),
        comments=own("kpi_comments"),
        actions=own("actions"),
        alerts=own("alerts_sent"),
        # The table is written by the metric_dictionary asset; before it has run, the code's own dictionary.
        dictionary=dictionary if len(dictionary) else dictionary_frame(),
    )


# --- the view model ------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A score with its status: `text` "78.6%", `status` "amber", `word` "▲ amber"."""

    text: str
    status: str
    word: str
    coverage: str = ""


@dataclass(frozen=True)
class Comment:
    kpi_id: str
    kpi_name: str
    text: str
    author: str


@dataclass(frozen=True)
class Action:
    action_id: str
    subject: str  # the KPI's or objective's name
    kpi_id: str
    objective_id: str
    action: str
    owner: str
    due: str
    status: str
    overdue: bool


@dataclass
class KpiRow:
    kpi_id: str
    name: str
    value: str
    threshold: str
    target: str
    stretch: str
    performance: str
    status: str
    word: str
    trend: str
    dora_band: str
    indicator: str
    owner: str
    comments: list[Comment] = field(default_factory=list)
    open_actions: list[Action] = field(default_factory=list)


@dataclass
class ObjectiveRow:
    objective_id: str
    name: str
    figure: Figure
    owner: str
    initiatives: list[str]
    kpis: list[KpiRow]


@dataclass
class PerspectiveRow:
    perspective_id: str
    name: str
    figure: Figure
    objectives: list[ObjectiveRow]


@dataclass(frozen=True)
class Change:
    kpi_id: str
    name: str
    text: str  # "● green → ■ red" or "+12.3 pts of performance (72.0% → 84.3%)"


@dataclass(frozen=True)
class Chart:
    kpi_id: str
    name: str
    spec: dict


@dataclass(frozen=True)
class ServiceWeeks:
    service: str
    metrics: list[tuple[str, str, str]]  # the table's columns: (metric, heading, the dictionary's title)
    weeks: list[tuple[str, list[str]]]  # (week start, formatted figure per metric), oldest first


@dataclass(frozen=True)
class Alert:
    kpi_id: str
    rule: str
    message: str
    delivered: bool


@dataclass(frozen=True)
class DictionaryRow:
    metric: str
    title: str
    definition: str
    unit: str
    direction: str
    source_fields: str


@dataclass
class Report:
    scorecard: str
    slug: str
    period_start: pd.Timestamp
    period_end: pd.Timestamp
    period_label: str
    covers: str  # what the period's figures cover: "" when complete, else "running: 6 of 31 days", "partial: ..."
    previous_label: str | None
    as_of: pd.Timestamp
    overall: Figure
    overall_change: str
    perspectives: list[PerspectiveRow]
    status_changes: list[Change]
    biggest_moves: list[Change]
    red_kpis: list[KpiRow]
    comments: list[Comment]
    charts: list[Chart]
    strategy_map: StrategyMap
    organisation: ServiceWeeks
    services: list[ServiceWeeks]
    actions: list[Action]
    alerts: list[Alert]
    dictionary: list[DictionaryRow]
    periods: list[str]

    @property
    def period_days(self) -> str:
        """The period's first and last day, "2026-11-01 to 2026-11-30" (one day alone for a day period)."""
        first, last = _day(self.period_start), _day(self.period_end - pd.Timedelta(days=1))
        return first if first == last else f"{first} to {last}"

    @property
    def trend_periods(self) -> int:
        return TREND_PERIODS

    @property
    def kpis(self) -> list[KpiRow]:
        return [kpi for perspective in self.perspectives for objective in perspective.objectives
                for kpi in objective.kpis]  # fmt: skip


def choose_period(kpi_scores: pd.DataFrame, as_of: pd.Timestamp, day: pd.Timestamp | None = None) -> pd.Timestamp:
    """The start of the review period to report: the one holding `day`, else latest_period by `as_of`.

    Raises ReportError when there are no scores, or none for the period holding `day` (naming those there are)."""
    if kpi_scores.empty:
        raise ReportError("no scores in the warehouse yet: run scorecard run or scorecard backfill first")
    if day is None:
        return latest_period(kpi_scores, as_of)
    holding = kpi_scores[(kpi_scores["period_start"] <= day) & (kpi_scores["period_end"] > day)]
    if holding.empty:
        raise ReportError(f"--period {day:%Y-%m-%d}: no scores for that period in the warehouse (periods: "
                          f"{', '.join(_day(p) for p in sorted(kpi_scores['period_start'].unique()))})")
    return holding["period_start"].iloc[0]


def build_report(frames: ReportFrames, scorecard: ScorecardConfig, as_of: pd.Timestamp,
                 day: pd.Timestamp | None = None, services: list[str] | None = None) -> Report:
    """The report of the period `choose_period` picks; `services` are the configured services (their weekly
    figures), default: those with weekly figures."""
    if frames.kpi_scores.empty:
        raise ReportError(f"no scores for '{scorecard.name}' in the warehouse yet: run scorecard run or scorecard "
                          "backfill first")
    period = choose_period(frames.kpi_scores, as_of, day)
    previous = _previous_period(frames.kpi_scores, period)
    kpis, nodes = _of_period(frames, period)
    previous_kpis, previous_nodes = _of_period(frames, previous)
    period_end = kpis["period_end"].iloc[0]
    names = _subject_names(scorecard)
    actions = action_rows(frames.actions, names, as_of)
    comments = comment_rows(frames.comments[frames.comments["period_start"] == period], names)
    tree = _tree(scorecard, kpis, nodes, comments, actions)
    objectives = nodes[nodes["node_type"] == "objective"]
    if services is None:
        services = sorted(set(frames.weekly_metrics["service"]) - {ORGANISATION})
    return Report(
        scorecard=scorecard.name,
        slug=scorecard.slug,
        period_start=period,
        period_end=period_end,
        period_label=period_label(period, scorecard.review_period),
        covers=_covers(nodes),
        previous_label=period_label(previous, scorecard.review_period) if previous is not None else None,
        as_of=as_of,
        overall=_figure(_scorecard_row(nodes)),
        overall_change=_score_change(_scorecard_row(nodes), _scorecard_row(previous_nodes)),
        perspectives=tree,
        status_changes=status_changes(kpis, previous_kpis),
        biggest_moves=biggest_moves(kpis, previous_kpis),
        red_kpis=[kpi for p in tree for o in p.objectives for kpi in o.kpis if kpi.status == "red"],
        comments=comments,
        charts=trend_charts(frames.kpi_scores, period, scorecard.review_period),
        strategy_map=strategy_map(scorecard, dict(zip(objectives["node_id"], objectives["status"], strict=True))),
        organisation=weekly_figures(frames.weekly_metrics, [ORGANISATION], period_end)[0],
        services=weekly_figures(frames.weekly_metrics, services, period_end),
        actions=actions,
        alerts=alert_rows(frames.alerts[frames.alerts["period_start"] == period]),
        dictionary=dictionary_rows(frames.dictionary),
        periods=[_day(p) for p in sorted(frames.kpi_scores["period_start"].unique())],
    )


def _previous_period(kpi_scores: pd.DataFrame, period: pd.Timestamp) -> pd.Timestamp | None:
    """The latest complete period before `period` (what "changed since" compares with: a partial one would show
    moves that are only missing days), None when there is none."""
    earlier = kpi_scores.loc[kpi_scores["period_start"] < period, "period_start"]
    earlier = earlier[earlier.isin(complete_periods(kpi_scores))]
    return earlier.max() if len(earlier) else None


def _covers(nodes: pd.DataFrame) -> str:
    """period_covers of the scorecard's own row (every row of a period covers the same)."""
    top = nodes[nodes["node_type"] == "scorecard"]
    return period_covers(top.iloc[0]) if len(top) else ""


def _of_period(frames: ReportFrames, period: pd.Timestamp | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (frames.kpi_scores[frames.kpi_scores["period_start"] == period],
            frames.node_scores[frames.node_scores["period_start"] == period])  # fmt: skip


def period_label(start: pd.Timestamp, review_period: str) -> str:
    if review_period == "month":
        return start.strftime("%B %Y")
    if review_period == "week":
        return f"week of {_day(start)}"
    return _day(start)


# --- the tree --------------------------------------------------------------------------------


def _tree(scorecard: ScorecardConfig, kpis: pd.DataFrame, nodes: pd.DataFrame, comments: list[Comment],
          actions: list[Action]) -> list[PerspectiveRow]:
    """Perspectives → objectives → KPIs in config order, each with its figures of the period."""
    kpi_by_id = {row.kpi_id: row for row in kpi_rows(kpis)}
    for comment in comments:
        if comment.kpi_id in kpi_by_id:
            kpi_by_id[comment.kpi_id].comments.append(comment)
    for action in actions:
        if action.kpi_id in kpi_by_id and action.status in OPEN_ACTION_STATUSES:
            kpi_by_id[action.kpi_id].open_actions.append(action)
    figures = {(row.node_type, row.node_id): _figure(row) for row in nodes.itertuples()}
    no_data = Figure(MISSING, "no_data", status_word("no_data"))
    tree = []
    for perspective in scorecard.perspectives:
        objectives = [
            ObjectiveRow(objective.id, objective.name, figures.get(("objective", objective.id), no_data),
                         objective.owner or "", list(objective.initiatives),
                         [kpi_by_id[kpi.id] for kpi in objective.kpis if kpi.id in kpi_by_id])
            for objective in perspective.objectives
        ]  # fmt: skip
        tree.append(PerspectiveRow(perspective.id, perspective.name,
                                   figures.get(("perspective", perspective.id), no_data), objectives))
    return tree


def kpi_rows(kpis: pd.DataFrame) -> list[KpiRow]:
    """One row of formatted figures per KPI of the period (a handful: one per KPI in the config)."""
    return [
        KpiRow(
            kpi_id=kpi.kpi_id,
            name=kpi.kpi_name,
            value=format_number(kpi.value, kpi.unit),
            threshold=format_number(kpi.threshold, kpi.unit),
            target=format_number(kpi.target, kpi.unit),
            stretch=format_number(kpi.stretch, kpi.unit),
            performance=format_fraction(kpi.performance),
            status=_status(kpi.status),
            word=status_word(kpi.status),
            trend=trend_text(kpi.trend, kpi.change, kpi.unit) or MISSING,
            dora_band=kpi.dora_band if isinstance(kpi.dora_band, str) else MISSING,
            indicator=kpi.indicator,
            owner=kpi.owner if isinstance(kpi.owner, str) else "",
        )
        for kpi in kpis.itertuples()
    ]


def _figure(row) -> Figure:
    if row is None:
        return Figure(MISSING, "no_data", status_word("no_data"))
    coverage = format_fraction(row.coverage)
    return Figure(format_fraction(row.score), _status(row.status), status_word(row.status), coverage)


def _scorecard_row(nodes: pd.DataFrame):
    rows = list(nodes[nodes["node_type"] == "scorecard"].itertuples())
    return rows[0] if rows else None


def _score_change(current, previous) -> str:
    if current is None or previous is None or pd.isna(current.score) or pd.isna(previous.score):
        return ""
    points = (current.score - previous.score) * 100
    return f"{points:+.1f} pts since the previous period ({format_fraction(previous.score)}, {previous.status})"


def _status(status: object) -> str:
    return status if isinstance(status, str) and status in KPI_STATUSES else "no_data"


# --- what changed ----------------------------------------------------------------------------


def _against_previous(kpis: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    before = previous[["kpi_id", "status", "performance"]].rename(
        columns={"status": "status_before", "performance": "performance_before"})
    return kpis.merge(before, on="kpi_id", how="inner")


def status_changes(kpis: pd.DataFrame, previous: pd.DataFrame) -> list[Change]:
    """KPIs whose status differs from the previous period's, the ones that got worse first."""
    both = _against_previous(kpis, previous)
    rank = {status: position for position, status in enumerate(KPI_STATUSES)}
    changed = both[both["status"] != both["status_before"]]
    changed = changed.assign(worse_by=changed["status"].map(rank) - changed["status_before"].map(rank))
    changed = changed.sort_values("worse_by", ascending=False, kind="stable")
    return [Change(row.kpi_id, row.kpi_name, f"{status_word(row.status_before)} → {status_word(row.status)}")
            for row in changed.itertuples()]  # fmt: skip


def biggest_moves(kpis: pd.DataFrame, previous: pd.DataFrame, count: int = BIGGEST_MOVES) -> list[Change]:
    """The KPIs whose performance moved most since the previous period (either way)."""
    both = _against_previous(kpis, previous)
    both = both.assign(move=both["performance"] - both["performance_before"]).dropna(subset=["move"])
    top = both.reindex(both["move"].abs().sort_values(ascending=False, kind="stable").index).head(count)
    return [Change(row.kpi_id, row.kpi_name, f"{row.move * 100:+.1f} pts of performance "
                   f"({format_fraction(row.performance_before)} → {format_fraction(row.performance)})")
            for row in top.itertuples() if row.move != 0]  # fmt: skip


# --- history ---------------------------------------------------------------------------------


def trend_charts(kpi_scores: pd.DataFrame, period: pd.Timestamp, review_period: str) -> list[Chart]:
    """One chart per KPI of the period: its last TREND_PERIODS periods up to the report's."""
    starts = pd.Series(kpi_scores.loc[kpi_scores["period_start"] <= period, "period_start"].unique())
    shown = set(starts.nlargest(TREND_PERIODS))
    history = kpi_scores[kpi_scores["period_start"].isin(shown)].sort_values("period_start", kind="stable")
    in_period = kpi_scores[kpi_scores["period_start"] == period]
    by_kpi = dict(tuple(history.groupby("kpi_id", sort=False)))
    return [Chart(kpi.kpi_id, kpi.kpi_name, kpi_trend_chart(by_kpi[kpi.kpi_id], review_period))
            for kpi in in_period.itertuples()]  # fmt: skip


def weekly_figures(weekly: pd.DataFrame, services: list[str], period_end: pd.Timestamp) -> list[ServiceWeeks]:
    """Each service's OPERATIONS_METRICS for the OPERATIONS_WEEKS weeks up to `period_end` (a week with no
    row shows "—")."""
    last_week = period_end - pd.Timedelta(days=1)
    last_week = last_week.normalize() - pd.Timedelta(days=last_week.weekday())
    weeks = pd.date_range(end=last_week, periods=OPERATIONS_WEEKS, freq="7D")
    metrics = [m for m in OPERATIONS_METRICS if m in METRICS]
    rows = weekly[weekly["period_start"].isin(weeks) & weekly["metric"].isin(metrics) & weekly["service"].isin(
        services)]  # fmt: skip
    grid = pd.MultiIndex.from_product([services, weeks], names=["service", "period_start"])
    values = rows.pivot_table(index=["service", "period_start"], columns="metric", values="value", aggfunc="first")
    values = values.reindex(index=grid, columns=metrics)
    formatted = pd.DataFrame({m: values[m].map(lambda v, unit=METRICS[m].unit: format_number(v, unit))
                              for m in metrics}, index=grid)  # fmt: skip
    columns = [(m, OPERATIONS_METRICS[m], METRICS[m].title) for m in metrics]
    return [ServiceWeeks(service, columns, [(_day(week), list(formatted.loc[(service, week)])) for week in weeks])
            for service in services]  # fmt: skip


# --- the review's own records ----------------------------------------------------------------


def _subject_names(scorecard: ScorecardConfig) -> dict[str, str]:
    """KPI and objective ids → their names."""
    names = {objective.id: objective.name for _, objective in scorecard.objectives()}
    return names | {kpi.id: kpi.name for _, _, kpi in scorecard.iter_kpis()}


def comment_rows(comments: pd.DataFrame, names: dict[str, str]) -> list[Comment]:
    """The comments in config order (`names` is in it: objectives, then KPIs)."""
    position = {subject: index for index, subject in enumerate(names)}
    comments = comments.assign(order=comments["kpi_id"].map(position)).sort_values("order", kind="stable")
    return [Comment(row.kpi_id, names.get(row.kpi_id, row.kpi_id), row.comment,
                    row.author if isinstance(row.author, str) else "") for row in comments.itertuples()]  # fmt: skip


def action_rows(actions: pd.DataFrame, names: dict[str, str], as_of: pd.Timestamp) -> list[Action]:
    """The action log, by due day, each flagged overdue (scoring.review.overdue) as of `as_of`'s day."""
    actions = actions.assign(overdue=overdue(actions, as_of)).sort_values(["due", "action_id"], kind="stable")
    return [
        Action(row.action_id, names.get(_text(row.kpi_id) or _text(row.objective_id), ""), _text(row.kpi_id),
               _text(row.objective_id), row.action, row.owner, _day(row.due), row.status, bool(row.overdue))
        for row in actions.itertuples()
    ]  # fmt: skip


def alert_rows(alerts: pd.DataFrame) -> list[Alert]:
    return [Alert(row.kpi_id, row.rule, row.message, pd.notna(row.delivered_at)) for row in alerts.itertuples()]


def dictionary_rows(dictionary: pd.DataFrame) -> list[DictionaryRow]:
    return [DictionaryRow(row.name, row.title, row.definition, row.unit, row.direction, row.source_fields)
            for row in dictionary.itertuples()]  # fmt: skip


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _day(stamp: pd.Timestamp) -> str:
    return pd.Timestamp(stamp).strftime("%Y-%m-%d")
