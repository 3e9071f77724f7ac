"""The report's charts as Vega-Lite specs, built with altair and drawn in the browser by vega-embed.

The specs are plain dicts (JSON-ready); the report inlines the vega-embed bundle once (`javascript_bundle`),
so the HTML file opens without a network. A KPI's trend chart shows its last periods as a line whose points
take the status colour and the status mark's shape (the tooltip and the table carry the status word), over bands
between its threshold, target and stretch as each period was scored with them.
"""

from __future__ import annotations

from functools import lru_cache

import altair as alt
import pandas as pd

from pipelines.views.formats import format_number, status_word
from pipelines.views.scorecard import period_covers
from scoring.scorecard import KPI_STATUSES

STATUS_COLOURS = {"blue": "#1f5fbf", "green": "#2e7d32", "amber": "#b26a00", "red": "#c62828", "no_data": "#8a8a8a"}
# The shapes of the status marks (pipelines.views.formats.STATUS_MARKS): a point is not told by its colour alone.
STATUS_SHAPES = {"blue": "diamond", "green": "circle", "amber": "triangle-up", "red": "square", "no_data": "cross"}
COMPLETE = "complete period"
LIMITS = ("threshold", "target", "stretch")
LIMIT_DASHES = {"threshold": [2, 2], "target": [6, 3], "stretch": [1, 0]}
AXIS_FORMATS = {"day": "%d %b", "week": "%d %b", "month": "%b %Y"}
TREND_SIZE = {"width": 520, "height": 170}
BAND_OPACITY = 0.14
DOMAIN_PADDING = 0.08  # share of the figures' range added above and below
# px the y axis's labels take whatever their width ("6" or "16,000"), so a grid of charts lines its plots up.
Y_AXIS_EXTENT = 56


@lru_cache(maxsize=1)
def javascript_bundle() -> str:
    """vega, vega-lite and vega-embed as one script (window.vegaEmbed), for the Vega-Lite version altair writes."""
    import vl_convert

    version = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return vl_convert.javascript_bundle(vl_version=version)


def status_scale() -> alt.Scale:
    return alt.Scale(domain=list(KPI_STATUSES), range=[STATUS_COLOURS[s] for s in KPI_STATUSES])


def kpi_trend_chart(history: pd.DataFrame, review_period: str) -> dict:
    """The Vega-Lite spec of one KPI's kpi_scores rows (oldest first): value line, status points, limit bands.

    The scales are set on the bands layer alone; the other layers share them."""
    unit = history["unit"].iloc[0] if isinstance(history["unit"].iloc[0], str) else None
    points = history.loc[history["value"].notna()]
    points = pd.DataFrame({
        "middle": points["period_start"] + (points["period_end"] - points["period_start"]) / 2,
        "period": points["period_start"].dt.strftime("%Y-%m-%d"),
        "value": points["value"], "shown": points["value"].map(lambda value: format_number(value, unit)),
        "status": points["status"], "word": points["status"].map(status_word),
        "covers": _covers(points),
    })  # fmt: skip
    points["fill"] = points["covers"].eq(COMPLETE).astype(float)
    low, high = _domain(history)
    x_scale = alt.Scale(type="utc")  # the bands span every period, start to end: they set the domain
    x_axis = alt.Axis(title=None, format=AXIS_FORMATS[review_period], labelAngle=0, tickCount=6)
    y_scale = alt.Scale(domain=[low, high], nice=False, zero=False)
    y_axis = alt.Axis(title=unit, minExtent=Y_AXIS_EXTENT)
    bands = alt.Chart(band_rows(history, low, high)).mark_rect(opacity=BAND_OPACITY, clip=True).encode(
        x=alt.X("period_start:T", scale=x_scale, axis=x_axis), x2="period_end:T",
        y=alt.Y("low:Q", scale=y_scale, axis=y_axis), y2="high:Q",
        color=alt.Color("zone:N", scale=status_scale(), legend=None),
    )
    limits = alt.Chart(limit_rows(history, unit)).mark_rule(clip=True, color="#555").encode(
        x="period_start:T", x2="period_end:T", y="y:Q",
        strokeDash=alt.StrokeDash("limit:N", scale=alt.Scale(domain=list(LIMITS), range=list(LIMIT_DASHES.values())),
                                  legend=alt.Legend(title=None, orient="top")),
        tooltip=[alt.Tooltip("limit:N"), alt.Tooltip("shown:N", title="value")],
    )
    values = alt.Chart(points).encode(x="middle:T", y="value:Q")
    line = values.mark_line(color="#333", clip=True)
    # A running or partial period's point is hollow: its figure covers only part of the period.
    marks = values.mark_point(filled=True, size=70, opacity=1, strokeWidth=2, clip=True).encode(
        color=alt.Color("status:N", scale=status_scale(), legend=None),
        stroke=alt.Stroke("status:N", scale=status_scale(), legend=None),
        fillOpacity=alt.FillOpacity("fill:Q", scale=None),
        shape=alt.Shape("status:N", scale=alt.Scale(domain=list(STATUS_SHAPES), range=list(STATUS_SHAPES.values())),
                        legend=None),
        tooltip=[alt.Tooltip("period:N"), alt.Tooltip("shown:N", title="value"), alt.Tooltip("word:N", title="status"),
                 alt.Tooltip("covers:N", title="covers")],
    )
    chart = alt.layer(bands, limits, line, marks).properties(**TREND_SIZE)
    return chart.configure_view(stroke=None).to_dict(validate=False)  # the tests validate; here it costs 2 s a report


def _covers(points: pd.DataFrame) -> pd.Series:
    """Each point's period_covers text, COMPLETE for a complete period."""
    covered = points.apply(lambda row: period_covers(row), axis=1) if len(points) else pd.Series(dtype=object)
    return covered.replace("", COMPLETE)


def band_rows(history: pd.DataFrame, low: float, high: float) -> pd.DataFrame:
    """One rect per period and status zone: short of the threshold (red), threshold..target (amber),
    target..stretch (green), beyond the stretch (blue); the open ends run to the chart's edge."""
    lower_is_better = (history["direction"] == "lower_is_better").to_numpy()
    worst_end = pd.Series(low, index=history.index).where(~lower_is_better, high)
    best_end = pd.Series(high, index=history.index).where(~lower_is_better, low)
    # Without a threshold, amber is a share of the way to the target: no line of its own to shade from.
    amber_from = history["threshold"]
    green_to = history["stretch"].fillna(best_end)
    zones = [
        ("red", worst_end, amber_from),
        ("amber", amber_from, history["target"]),
        ("green", history["target"], green_to),
        ("blue", history["stretch"], best_end),
    ]
    frames = [pd.DataFrame({"period_start": history["period_start"], "period_end": history["period_end"],
                            "zone": zone, "low": start, "high": end}) for zone, start, end in zones]  # fmt: skip
    rows = pd.concat(frames, ignore_index=True).dropna(subset=["low", "high"])
    return rows.astype({"low": float, "high": float})


def limit_rows(history: pd.DataFrame, unit: str | None = None) -> pd.DataFrame:
    """The threshold, target and stretch of every period, long (period, limit, y, shown: y with its unit);
    absent limits left out."""
    rows = history.melt(id_vars=["period_start", "period_end"], value_vars=list(LIMITS), var_name="limit",
                        value_name="y")  # fmt: skip
    rows = rows.dropna(subset=["y"]).reset_index(drop=True)
    return rows.assign(shown=rows["y"].map(lambda value: format_number(value, unit)))


def _domain(history: pd.DataFrame) -> tuple[float, float]:
    figures = pd.concat([history[column] for column in ("value", *LIMITS)]).dropna().astype(float)
    low, high = float(figures.min()), float(figures.max())
    padding = (high - low) * DOMAIN_PADDING or max(abs(high) * DOMAIN_PADDING, 1.0)
    return low - padding, high + padding
