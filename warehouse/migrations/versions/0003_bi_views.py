"""Views for BI tools: period dimensions, the latest metrics, service health, KPI status and DORA band history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

`scorecard_latest` changes meaning: it shows the latest review period that had ENDED when the scorecard
was last computed (the period the HTML report and `scorecard show` pick), no longer the still running
period with its partial counts. Its columns stay the same.

"Ended" is judged against the newest computed_at of the table (kpi_scores per scorecard, metric_values as a
whole), not against the database clock: a period counts as ended once the pipeline has computed after its end,
so a view never shows a period as final before the run that completes it, and it reads the same from every
tool and timezone. The rule is spelled out once, in `scorecard_periods` and `metric_periods`; every other view
joins them.

Plain SQL that means the same on SQLite (3.25+, for the window function) and PostgreSQL: SQLite keeps
timestamps as fixed-width UTC text, so max() and comparisons between stored timestamps are time order on both.
Booleans are true/false on PostgreSQL and 1/0 on SQLite.

On PostgreSQL every view and view column gets a COMMENT (BI tools show them as descriptions), from `COMMENTS`.

Frozen on purpose, as 0001: the views are spelled out here; 0001's own SQL is reused only for what 0001 made.
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_initial = importlib.import_module("warehouse.migrations.versions.0001_initial")
KPI_COLUMNS = _initial.KPI_COLUMNS  # "k.scorecard, ..., k.computed_at": every kpi_scores column

# The review period each scorecard shows (periods_ago = 0): as pipelines.views.scorecard.latest_period with
# as_of = the scorecard's newest computed_at: the latest period with a value that had ended, else the latest
# with a value, else the latest.
SCORECARD_PERIODS = """CREATE VIEW scorecard_periods AS
WITH periods AS (
    SELECT scorecard, period_start, max(period_end) AS period_end,
           max(CASE WHEN value IS NOT NULL THEN 1 ELSE 0 END) AS scored
    FROM kpi_scores
    GROUP BY scorecard, period_start
), computed AS (
    SELECT scorecard, max(computed_at) AS computed_at FROM kpi_scores GROUP BY scorecard
), ranked AS (
    SELECT p.scorecard, p.period_start, p.period_end, p.scored, c.computed_at,
           COALESCE(p.period_end <= c.computed_at, FALSE) AS period_ended,
           ROW_NUMBER() OVER (PARTITION BY p.scorecard ORDER BY p.period_start DESC) AS period_rank
    FROM periods p JOIN computed c ON c.scorecard = p.scorecard
), shown AS (
    SELECT scorecard,
           COALESCE(min(CASE WHEN scored = 1 AND period_ended THEN period_rank END),
                    min(CASE WHEN scored = 1 THEN period_rank END), 1) AS period_rank
    FROM ranked
    GROUP BY scorecard
)
SELECT r.scorecard, r.period_start, r.period_end, r.period_ended, r.period_rank - s.period_rank AS periods_ago,
       r.computed_at
FROM ranked r JOIN shown s ON s.scorecard = r.scorecard"""

# Per grain, periods_ago = 0 is the latest period that had ended when metric_values was last computed
# (the latest period, before any has ended).
METRIC_PERIODS = """CREATE VIEW metric_periods AS
WITH periods AS (
    SELECT grain, period_start, max(period_end) AS period_end FROM metric_values GROUP BY grain, period_start
), computed AS (
    SELECT max(computed_at) AS computed_at FROM metric_values
), ranked AS (
    SELECT p.grain, p.period_start, p.period_end, c.computed_at,
           COALESCE(p.period_end <= c.computed_at, FALSE) AS period_ended,
           ROW_NUMBER() OVER (PARTITION BY p.grain ORDER BY p.period_start DESC) AS period_rank
    FROM periods p CROSS JOIN computed c
), shown AS (
    SELECT grain, COALESCE(min(CASE WHEN period_ended THEN period_rank END), 1) AS period_rank
    FROM ranked
    GROUP BY grain
)
SELECT r.grain, r.period_start, r.period_end, r.period_ended, r.period_rank - s.period_rank AS periods_ago,
       r.computed_at
FROM ranked r JOIN shown s ON s.grain = r.grain"""

METRIC_LATEST = """CREATE VIEW metric_latest AS
SELECT m.metric, m.service, m.grain, m.period_start, m.period_end, m.value, m.unit, m.sample_size, m.computed_at
FROM metric_values m
JOIN metric_periods p ON p.grain = m.grain AND p.period_start = m.period_start
WHERE p.periods_ago = 0"""

# service_health columns: (column, metric, metric_values column it takes). The DORA bands are not here: scoring
# assigns them to KPIs per review period (kpi_scores.dora_band, dora_band_history); restating the band limits of
# scoring/data/dora_bands.yaml in SQL for each service and week would be a second copy that drifts.
HEALTH_FIGURES = (
    ("deployment_frequency", "deployment_frequency", "value"),
    ("deployment_frequency_per_day", "deployment_frequency_per_day", "value"),
    ("lead_time_for_changes", "lead_time_for_changes", "value"),
    ("change_failure_rate", "change_failure_rate", "value"),
    ("changes", "change_failure_rate", "sample_size"),
    ("failed_deployment_recovery_time", "failed_deployment_recovery_time", "value"),
    ("mttr", "mttr", "value"),
    ("availability", "availability", "value"),
    ("mtbf", "mtbf", "value"),
    ("open_failure_incidents", "open_failure_incidents", "value"),
    ("deployment_rework_rate", "deployment_rework_rate", "value"),
)
_FIGURES = ",\n       ".join(f"max(CASE WHEN m.metric = '{metric}' THEN m.{source} END) AS {column}"
                          for column, metric, source in HEALTH_FIGURES)  # fmt: skip
SERVICE_HEALTH_HISTORY = f"""CREATE VIEW service_health_history AS
SELECT m.service, m.grain, m.period_start, p.period_end, p.period_ended, p.periods_ago,
       {_FIGURES}
FROM metric_values m
JOIN metric_periods p ON p.grain = m.grain AND p.period_start = m.period_start
GROUP BY m.service, m.grain, m.period_start, p.period_end, p.period_ended, p.periods_ago"""

SERVICE_HEALTH = f"""CREATE VIEW service_health AS
SELECT service, grain, period_start, period_end, period_ended,
       {", ".join(column for column, _, _ in HEALTH_FIGURES)}
FROM service_health_history
WHERE periods_ago = 0"""

# Best first, as scoring.scorecard.KPI_STATUSES and scoring.bands.BAND_NAMES (tests/test_bi.py holds them).
STATUS_RANK = ("CASE k.status WHEN 'blue' THEN 1 WHEN 'green' THEN 2 WHEN 'amber' THEN 3 WHEN 'red' THEN 4 "
               "WHEN 'no_data' THEN 5 END")  # fmt: skip
BAND_RANK = "CASE h.dora_band WHEN 'elite' THEN 1 WHEN 'high' THEN 2 WHEN 'medium' THEN 3 WHEN 'low' THEN 4 END"

KPI_STATUS_HISTORY = f"""CREATE VIEW kpi_status_history AS
SELECT {KPI_COLUMNS}, p.period_ended, p.periods_ago, {STATUS_RANK} AS status_rank
FROM kpi_scores k
JOIN scorecard_periods p ON p.scorecard = k.scorecard AND p.period_start = k.period_start"""

DORA_BAND_HISTORY = f"""CREATE VIEW dora_band_history AS
SELECT h.scorecard, h.kpi_id, h.kpi_name, h.metric, h.unit, h.period_start, h.period_end, h.period_ended,
       h.periods_ago, h.value, h.status, h.dora_band, {BAND_RANK} AS dora_band_rank, h.owner
FROM kpi_status_history h
JOIN metric_dictionary d ON d.name = h.metric
WHERE d.dora = TRUE"""

SCORECARD_LATEST = f"""CREATE VIEW scorecard_latest AS
SELECT {KPI_COLUMNS},
       {_initial._node_columns("p", "perspective")},
       {_initial._node_columns("o", "objective")},
       {_initial._node_columns("s", "scorecard")}
FROM kpi_scores k
JOIN scorecard_periods sp ON sp.scorecard = k.scorecard AND sp.period_start = k.period_start AND sp.periods_ago = 0
{_initial._node_join("p", "perspective", "k.perspective_id")}
{_initial._node_join("o", "objective", "k.objective_id")}
{_initial._node_join("s", "scorecard", None)}"""

# In creation order (a view after the views it reads).
VIEWS_SQL = {
    "scorecard_periods": SCORECARD_PERIODS,
    "metric_periods": METRIC_PERIODS,
    "metric_latest": METRIC_LATEST,
    "service_health_history": SERVICE_HEALTH_HISTORY,
    "service_health": SERVICE_HEALTH,
    "kpi_status_history": KPI_STATUS_HISTORY,
    "dora_band_history": DORA_BAND_HISTORY,
    "scorecard_latest": SCORECARD_LATEST,
}

# --- comments (PostgreSQL), the one text of each column's meaning; docs/bi.md shows the same -------------

_KPI = {
    "scorecard": "the scorecard's name (scorecard.name in scorecard.yaml)",
    "perspective_id": "id of the KPI's perspective in scorecard.yaml",
    "objective_id": "id of the KPI's objective in scorecard.yaml",
    "kpi_id": "id of the KPI in scorecard.yaml",
    "kpi_name": "the KPI's name",
    "metric": "the metric the KPI reads (metric_dictionary.name); the prefix manual: marks a value from a file",
    "unit": "unit of value, baseline, threshold, target and stretch (percent, hours, count, ...)",
    "direction": "higher_is_better or lower_is_better",
    "indicator": "leading or lagging",
    "period_start": "start of the review period, UTC, included",
    "period_end": "end of the review period, UTC, excluded (the next period's start)",
    "value": "the KPI's value in the period; empty: no data",
    "baseline": "the value that scores 0 performance",
    "threshold": "reaching it makes the KPI at least amber",
    "target": "reaching it makes the KPI green (performance 1)",
    "stretch": "reaching it makes the KPI blue",
    "performance": "(value - baseline) / (target - baseline): 0 at baseline, 1 at target",
    "status": "blue, green, amber, red or no_data",
    "previous_value": "the KPI's value in the previous review period",
    "change": "value - previous_value",
    "trend": "improving, worsening or flat against the previous period (by direction); empty without one",
    "dora_band": "elite, high, medium or low for a KPI on a banded DORA metric; empty otherwise or without data",
    "weight": "the KPI's weight in its objective's roll-up",
    "owner": "who answers for the KPI",
    "computed_at": "when the pipeline last wrote the row with these values, UTC",
}
_NODE_FIELDS = {
    "name": "the {level}'s name",
    "score": "the {level}'s score: its KPIs' performance rolled up (1 = on target)",
    "status": "the {level}'s status: green, amber, red or no_data",
    "coverage": "share of the {level}'s weight with data in the period (0..1)",
}
_NODE = {
    f"{level}_{field}": text.format(level=level)
    for level in ("perspective", "objective", "scorecard")
    for field, text in _NODE_FIELDS.items()
}
_PERIOD_STATE = {
    "period_ended": "true once the period had ended when the table was last computed; false: still running",
    "periods_ago": "0 for the period shown as latest (the latest ended), 1 for the one before, ...; "
                   "negative for a period still running after it",
}  # fmt: skip
_METRIC = {
    "metric": "metric name (metric_dictionary.name)",
    "service": "service name from scorecard.yaml services; all = the organisation",
    "grain": "period length: week (from Monday), month, or the review period",
    "period_start": "start of the period, UTC, included",
    "period_end": "end of the period, UTC, excluded (the next period's start)",
    "value": "the metric's value in the period; empty: nothing to measure",
    "unit": "unit of value: hours, percent, count or per_day",
    "sample_size": "how many records the value is computed from",
    "computed_at": "when the pipeline last wrote the row with these values, UTC",
}
_HEALTH = {
    "deployment_frequency": "successful production deployments in the period",
    "deployment_frequency_per_day": "deployment_frequency per day of the period",
    "lead_time_for_changes": "median hours from first commit to production deployment",
    "change_failure_rate": "failed changes / all changes, percent",
    "changes": "changes counted by change_failure_rate",
    "failed_deployment_recovery_time": "median hours from a failed change to its recovery",
    "mttr": "mean hours to restore service after failure incidents resolved in the period",
    "availability": "percent of the period with no failure incident open (all: mean of the monitored services)",
    "mtbf": "mean hours between failures: uptime / outages",
    "open_failure_incidents": "failure incidents still open at the period's end",
    "deployment_rework_rate": "percent of production deployments that were unplanned (rework)",
}
_PERIOD_DIMENSION = {
    "period_start": "start of the period, UTC, included",
    "period_end": "end of the period, UTC, excluded (the next period's start)",
    **_PERIOD_STATE,
}


def _columns(source: dict[str, str], names: str) -> dict[str, str]:
    return {name: source[name] for name in names.split()}


COMMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "kpi_history": ("every KPI score of every review period", dict(_KPI)),
    "scorecard_latest": (
        "every KPI of each scorecard's latest ended review period, with its perspective's, objective's and the "
        "scorecard's score, status and coverage",
        _KPI | _NODE,
    ),
    "scorecard_periods": (
        "each scorecard's review periods: ended or still running, and how many periods before the latest ended",
        {
            "scorecard": _KPI["scorecard"],
            **_columns(_KPI, "period_start period_end"),
            **_PERIOD_STATE,
            "computed_at": "when the scorecard was last computed, UTC: a period ended if it ended by then",
        },
    ),
    "metric_periods": (
        "each grain's metric periods: ended or still running, and how many periods before the latest ended",
        {
            "grain": _METRIC["grain"],
            **_PERIOD_DIMENSION,
            "computed_at": "when metric_values was last computed, UTC: a period ended if it ended by then",
        },
    ),
    "metric_latest": ("every metric of every service in its grain's latest ended period", dict(_METRIC)),
    "service_health_history": (
        "per service, grain and period: the DORA and reliability figures side by side",
        {**_columns(_METRIC, "service grain"), **_PERIOD_DIMENSION, **_HEALTH},
    ),
    "service_health": (
        "per service and grain: the DORA and reliability figures of the latest ended period",
        {
            **_columns(_METRIC, "service grain"),
            **_columns(_PERIOD_DIMENSION, "period_start period_end period_ended"),
            **_HEALTH,
        },
    ),
    "kpi_status_history": (
        "every KPI score of every review period, with the period's state and a sortable status rank",
        _KPI | _PERIOD_STATE | {"status_rank": "1 blue, 2 green, 3 amber, 4 red, 5 no_data (best first)"},
    ),
    "dora_band_history": (
        "the DORA band of every KPI on a DORA metric in every review period",
        {
            **_columns(_KPI, "scorecard kpi_id kpi_name metric unit period_start period_end"),
            **_PERIOD_STATE,
            **_columns(_KPI, "value status dora_band"),
            "dora_band_rank": "1 elite, 2 high, 3 medium, 4 low; empty without a band",
            "owner": _KPI["owner"],
        },
    ),
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _comment_views() -> None:
    for view, (about, columns) in COMMENTS.items():
        op.execute(f"COMMENT ON VIEW {view} IS {_literal(about)}")
        for column, text in columns.items():
            op.execute(f"COMMENT ON COLUMN {view}.{column} IS {_literal(text)}")


def _replace_scorecard_latest(create_sql: str) -> None:
    """PostgreSQL replaces the view in place (same columns), keeping its grants and the views users built on it;
    SQLite has no CREATE OR REPLACE VIEW."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(create_sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
    else:
        op.execute("DROP VIEW scorecard_latest")
        op.execute(create_sql)


def upgrade() -> None:
    for view, sql in VIEWS_SQL.items():
        if view == "scorecard_latest":
            _replace_scorecard_latest(sql)
        else:
            op.execute(sql)
    if op.get_bind().dialect.name == "postgresql":
        _comment_views()


def downgrade() -> None:
    _replace_scorecard_latest(_initial.SCORECARD_LATEST)  # first: it reads scorecard_periods
    for view in reversed(VIEWS_SQL):
        if view != "scorecard_latest":
            op.execute(f"DROP VIEW {view}")
    if op.get_bind().dialect.name == "postgresql":
        for view in ("kpi_history", "scorecard_latest"):  # the views 0001 made keep no 0003 comment
            op.execute(f"COMMENT ON VIEW {view} IS NULL")
            for column in COMMENTS[view][1]:
                op.execute(f"COMMENT ON COLUMN {view}.{column} IS NULL")
