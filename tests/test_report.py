"""The HTML scorecard report: `scorecard report`, the scorecard_report asset, and the view model behind them.

Data: the demo path (`scorecard generate --days 90`, then `scorecard backfill --days 90`) with the clock fixed at
2024-04-02, so the report shows March 2024 (the latest review period that has ended) and February is the period
before it; review files (comments, actions) written beside the config are loaded by the same backfill. The HTML
is read with html.parser (no browser here: tests/test_report_browser.py opens it in Chromium).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import altair as alt
import pandas as pd
import pytest
import yaml
from dagster import DagsterInstance, materialize
from demo_files import ROOT, generate_demo, isolate_cli
from demo_files import cli as run
from markupsafe import Markup

from pipelines.assets import ASSETS
from pipelines.assets.report import scorecard_report
from pipelines.cli.runner import STEPS
from pipelines.clock import NOW_ENV
from pipelines.config import read_config
from pipelines.derive import score_scorecard
from pipelines.resources import (
    ProgressReporter,
    ScorecardConfigResource,
    WarehouseResource,
)
from pipelines.views.charts import Y_AXIS_EXTENT, band_rows, javascript_bundle
from pipelines.views.formats import format_fraction, format_number, status_word, trend_text
from pipelines.views.render import inline_code, render_index, render_report
from pipelines.views.report import (
    OPERATIONS_METRICS,
    ReportError,
    ReportFrames,
    biggest_moves,
    build_report,
    choose_period,
    read_frames,
    status_changes,
    weekly_figures,
)
from pipelines.views.strategy_map import strategy_map
from scoring.config import ScorecardConfig
from scoring.dictionary import METRICS
from scoring.review import OPEN_ACTION_STATUSES
from warehouse import Warehouse

NOW = "2024-04-02T06:00:00Z"
MARCH, FEBRUARY = pd.Timestamp("2024-03-01", tz="UTC"), pd.Timestamp("2024-02-01", tz="UTC")
REPORT_NAME = "it_balanced_scorecard-2024-03-01.html"
BUNDLE_MARK = "window.vegaEmbed="  # the line of vl-convert's bundle that makes vega-embed global
COMMENTS = [
    {"kpi_id": "mttr", "period": "2024-03", "comment": "Two long incidents waited for a manual failover.",
     "author": "incident-manager"},
    {"kpi_id": "availability", "period": "2024-03", "comment": "Storage <b>outages</b> & a network fault.",
     "author": "sre-lead"},
    {"kpi_id": "availability", "period": "2024-02", "comment": "February: one short outage.", "author": "sre-lead"},
]
ACTIONS = [  # as of 2024-04-02: are overdue; A-2 is due later, A-4 done, A-5 dropped
    {"id": "A-1", "kpi_id": "mttr", "action": "Automate the failover runbook", "owner": "incident-manager",
     "due": "2024-03-15", "status": "open"},
    {"id": "A-2", "kpi_id": "availability", "action": "Bring the storage refresh forward", "owner": "sre-lead",
     "due": "2024-04-30", "status": "in_progress"},
    {"id": "A-3", "objective_id": "reliable_services", "action": "Review the error budget policy",
     "owner": "head-of-infrastructure", "due": "2024-03-01", "status": "open"},
    {"id": "A-4", "kpi_id": "it_spend_vs_budget", "action": "Close the licence review", "owner": "it-finance-director",
     "due": "2024-02-01", "status": "done"},
    {"id": "A-5", "kpi_id": "user_satisfaction", "action": "Survey again", "owner": "service-desk-manager",
     "due": "2024-03-01", "status": "dropped"},
]
HTML_WHITESPACE = re.compile(r"[ \t\n\r\f]+")


# ---------------------------------------------------------------------------------------------
# A small DOM from html.parser


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def text(self) -> str:
        """The text as HTML lays it out: runs of ASCII whitespace as one space; a no-break space stays itself."""
        parts = [child if isinstance(child, str) else child.text() for child in self.children]
        return " ".join(HTML_WHITESPACE.split(" ".join(parts))).strip()

    def iter(self):
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def select(self, tag: str | None = None, cls: str | None = None, **attrs: str | bool) -> list[Element]:
        """Descendants with the tag, class and attributes (True: present, a string: equal; `data_x` is data-x)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        return [e for e in self.iter() if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)
                and all((name in e.attrs) if value is True else e.attrs.get(name) == value
                        for name, value in wanted.items())]  # fmt: skip

    def one(self, tag: str | None = None, cls: str | None = None, **attrs: str | bool) -> Element:
        found = self.select(tag, cls, **attrs)
        assert len(found) == 1, (tag, cls, attrs, len(found))
        return found[0]

    def keyed(self, attribute: str, tag: str | None = None, cls: str | None = None) -> dict[str, Element]:
        found = self.select(tag, cls, **{attribute.replace("-", "_"): True})
        keyed = {e.attrs[attribute]: e for e in found}
        assert len(keyed) == len(found), f"{tag}.{cls}: {attribute} repeated"
        return keyed


class _TreeBuilder(HTMLParser):
    VOID = {"meta", "br", "img", "link", "input", "hr", "col", "source", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Element("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        if tag not in self.VOID:
            self.current = element

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


# ---------------------------------------------------------------------------------------------
# The warehouse: the demo path with review files, clock fixed


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo config with review files and `report.dir: published`, backfilled over 90 days."""
    folder = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as env:
        isolate_cli(env, NOW)
        generate_demo(folder, days=90)
        pd.DataFrame(COMMENTS).to_csv(folder / "comments.csv", index=False)
        (folder / "actions.yaml").write_text(yaml.safe_dump(ACTIONS, sort_keys=False))
        config = yaml.safe_load((folder / "scorecard.yaml").read_text())
        config |= {"review": {"comments": "comments.csv", "actions": "actions.yaml"}, "report": {"dir": "published"}}
        (folder / "scorecard.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        backfill = run("backfill", "--days", "90", "--config", str(folder / "scorecard.yaml"))
        assert backfill.exit_code == 0, backfill.output
    return {"config": folder / "scorecard.yaml", "backfill": backfill.stdout}


@pytest.fixture(scope="module")
def tables(scored: dict) -> dict[str, pd.DataFrame]:
    config = read_config(scored["config"])
    with Warehouse.connect(config.warehouse.url) as warehouse:
        return {name: warehouse.read_table(name) for name in
                ("kpi_scores", "node_scores", "metric_values", "metric_dictionary", "actions", "kpi_comments",
                 "alerts_sent")}


def report_command(config: Path, *args: str):
    with pytest.MonkeyPatch.context() as env:
        isolate_cli(env, NOW)
        return run("report", "--config", str(config), *args)


@pytest.fixture(scope="module")
def written(scored: dict) -> dict:
    out = scored["config"].parent / "out"
    result = report_command(scored["config"], "--out", str(out))
    assert result.exit_code == 0, result.output
    return {"stdout": result.stdout, "out": out, "path": out / REPORT_NAME}


@pytest.fixture(scope="module")
def html(written: dict) -> str:
    return written["path"].read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def dom(html: str) -> Element:
    return parse(html)


@pytest.fixture(scope="module")
def config(scored: dict):
    return read_config(scored["config"])


def of_period(frame: pd.DataFrame, period: pd.Timestamp) -> pd.DataFrame:
    return frame[frame["period_start"] == period]


def layer_data(spec: dict, mark: str) -> list[dict]:
    """The rows of the first layer of a Vega-Lite spec drawn with `mark`."""
    return next(spec["datasets"][layer["data"]["name"]] for layer in spec["layer"] if layer["mark"]["type"] == mark)


# ---------------------------------------------------------------------------------------------
# One self-contained file


def test_report_writes_one_file_for_the_latest_ended_period_and_prints_its_path(written):
    assert written["stdout"].splitlines() == [f"report: {written['path']}", f"index:  {written['out'] / 'index.html'}"]
    assert sorted(path.name for path in written["out"].iterdir()) == ["index.html", REPORT_NAME]


def test_nothing_is_fetched_when_the_report_opens(dom, html):
    addresses = [value for element in dom.iter() for name, value in element.attrs.items()
                 if name in ("src", "href", "action", "data") and value]  # fmt: skip
    assert [address for address in addresses if re.match(r"^(https?:)?//", address)] == []
    assert not dom.select("script", src=True) and not dom.select("link")
    assert "@import" not in "".join(style.text() for style in dom.select("style"))


def test_the_chart_library_is_inlined_exactly_once(html, dom):
    assert html.count(BUNDLE_MARK) == 1
    assert javascript_bundle() in html
    assert len(dom.select("style")) == 1


def test_every_chart_spec_is_valid_vega_lite(dom):
    specs = json.loads(dom.one("script", id="chart-specs").text())
    for key, spec in specs.items():
        alt.LayerChart.from_dict(spec)  # raises on a spec Vega-Lite would refuse
        assert "$schema" in spec, key


# ---------------------------------------------------------------------------------------------
# The scorecard: figures equal kpi_scores and node_scores for the period


def test_every_kpi_row_shows_the_periods_figures_from_kpi_scores(dom, tables, config):
    kpis = of_period(tables["kpi_scores"], MARCH)
    rows = dom.one("section", id="scorecard").keyed("data-kpi-id", "tr", "kpi-row")
    assert list(rows) == [kpi.id for _, _, kpi in config.iter_kpis()]  # every KPI, in config order
    for kpi in kpis.itertuples():
        row = rows[kpi.kpi_id]
        cells = {cls: row.one("td", cls).text() for cls in ("value", "threshold", "target", "stretch", "performance",
                                                            "status", "trend", "dora-band", "indicator", "owner")}
        assert cells == {
            "value": format_number(kpi.value, kpi.unit), "threshold": format_number(kpi.threshold, kpi.unit),
            "target": format_number(kpi.target, kpi.unit), "stretch": format_number(kpi.stretch, kpi.unit),
            "performance": format_fraction(kpi.performance), "status": status_word(kpi.status),
            "trend": trend_text(kpi.trend, kpi.change, kpi.unit) or "—",
            "dora-band": kpi.dora_band if isinstance(kpi.dora_band, str) else "—",
            "indicator": kpi.indicator, "owner": kpi.owner,
        }, kpi.kpi_id  # fmt: skip
        assert f"status-{kpi.status}" in row.one("td", "status").classes


def test_objective_and_perspective_rows_show_their_score_and_status_word(dom, tables, config):
    nodes = of_period(tables["node_scores"], MARCH)
    scorecard = dom.one("section", id="scorecard")
    for node_type in ("objective", "perspective"):
        rows = scorecard.keyed(f"data-{node_type}-id", "tr", f"{node_type}-row")
        expected = nodes[nodes["node_type"] == node_type]
        assert set(rows) == set(expected["node_id"])
        for node in expected.itertuples():
            row = rows[node.node_id]
            assert row.one("td", "performance").text() == format_fraction(node.score)
            assert row.one("span", "status").text() == status_word(node.status)
    initiatives = {o.id: o.initiatives for _, o in config.scorecard.objectives()}
    for objective_id, row in scorecard.keyed("data-objective-id", "tr", "objective-row").items():
        assert [li.text() for li in row.select("li")] == initiatives[objective_id]


def test_statuses_read_as_words_with_their_mark_not_colour_alone(dom):
    for element in dom.select(cls="status"):
        status = next(cls.removeprefix("status-") for cls in element.classes if cls.startswith("status-"))
        assert element.text() == status_word(status)


@pytest.mark.parametrize("value, unit, shown", [
    (15000, "EUR", "15,000.00\u00a0EUR"), (2.5, "hours", "2.50\u00a0h"), (99.95, "percent", "99.95%"),
    (436.0, "count", "436"), (3.9, "score", "3.90"), (0.43, "per_day", "0.43/day"), (-12.5, "days", "-12.50\u00a0days"),
    (1.0, None, "1.00"), (float("nan"), "EUR", "—"), (None, "hours", "—"),
])  # fmt: skip
def test_format_number_writes_the_unit_after_the_figure(value, unit, shown):
    """One rule for the terminal, the report and the alerts: a no-break space before a unit word, none before
    % or /day, nothing for a count or a score (the KPI's name says what is counted)."""
    assert format_number(value, unit) == shown


def test_a_trend_shows_its_change_in_the_kpis_unit():
    assert trend_text("worsening", 208.0, "EUR") == "↓ worsening (+208.00\u00a0EUR)"
    assert trend_text("improving", -12.52, "hours") == "↑ improving (-12.52\u00a0h)"
    assert trend_text(None, float("nan"), "EUR") == ""


def test_every_value_limit_and_change_in_the_report_carries_its_unit(dom, tables):
    """"Run cost per service" reads 14,853.00 EUR against 15,000.00 EUR and changed by +208.00 EUR, not +208.00;
    number and unit never part at a line break (a no-break space)."""
    suffixes = {"percent": "%", "hours": "\u00a0h", "EUR": "\u00a0EUR"}
    march = of_period(tables["kpi_scores"], MARCH)
    assert set(march["unit"]) >= set(suffixes)
    rows = dom.one("section", id="scorecard").keyed("data-kpi-id", "tr", "kpi-row")
    for kpi in march[march["unit"].isin(list(suffixes))].itertuples():
        cells = {cls: rows[kpi.kpi_id].one("td", cls).text() for cls in ("value", "threshold", "target", "stretch")}
        for cls, text in cells.items():
            assert text == "—" or text.endswith(suffixes[kpi.unit]), (kpi.kpi_id, cls, text)
        trend = rows[kpi.kpi_id].one("td", "trend").text()
        assert trend == "—" or trend.endswith(suffixes[kpi.unit] + ")"), (kpi.kpi_id, trend)
    cost = rows["cost_per_service"]
    assert cost.one("td", "trend").text() == "↓ worsening (+208.00\u00a0EUR)"
    assert cost.one("td", "target").text() == "15,000.00\u00a0EUR"
    red = dom.one(id="red-kpis").keyed("data-kpi-id", "tr")
    assert [td.text() for td in red["mttr"].select("td", "num")] == [
        format_number(march.set_index("kpi_id").at["mttr", column], "hours") for column in ("value", "target")]
    assert all(td.text().endswith("\u00a0h") for td in red["mttr"].select("td", "num"))


# ---------------------------------------------------------------------------------------------
# The executive summary


def test_the_summary_has_the_overall_score_and_every_perspective(dom, tables):
    nodes = of_period(tables["node_scores"], MARCH)
    overall = nodes[nodes["node_type"] == "scorecard"].iloc[0]
    summary = dom.one("section", id="summary")
    assert summary.one(data_testid="overall-score").text() == format_fraction(overall.score)
    assert summary.one(data_testid="overall-status").text() == status_word(overall.status)
    shown = summary.keyed("data-perspective-id", cls="perspective-summary")
    for perspective in nodes[nodes["node_type"] == "perspective"].itertuples():
        text = shown[perspective.node_id].text()
        for part in (perspective.name, format_fraction(perspective.score), status_word(perspective.status),
                     f"coverage {format_fraction(perspective.coverage)}"):
            assert part in text, (perspective.node_id, part)


def test_the_summary_says_what_changed_since_february(dom, tables):
    scores = tables["kpi_scores"]
    both = of_period(scores, MARCH).merge(of_period(scores, FEBRUARY), on="kpi_id", suffixes=("", "_before"))
    changed = both[both["status"] != both["status_before"]]
    changes = dom.one(id="changes")
    assert "since February 2024" in changes.text()
    listed = {li.attrs["data-kpi-id"]: li.text() for li in changes.one("ul", "status-changes").select("li")}
    assert listed == {row.kpi_id: f"{row.kpi_name}: {status_word(row.status_before)} → {status_word(row.status)}"
                      for row in changed.itertuples()}  # fmt: skip
    moves = changes.one("ul", "biggest-moves").select("li")
    move = (both["performance"] - both["performance_before"]).abs()
    assert moves[0].attrs["data-kpi-id"] == both.loc[move.idxmax(), "kpi_id"]


def test_the_summary_lists_the_red_kpis_with_owner_and_open_actions(dom, tables, config):
    red = of_period(tables["kpi_scores"], MARCH).query("status == 'red'")
    actions = tables["actions"]
    rows = dom.one(id="red-kpis").keyed("data-kpi-id", "tr")
    assert list(rows) == [kpi.id for _, _, kpi in config.iter_kpis() if kpi.id in set(red["kpi_id"])]
    for kpi in red.itertuples():
        row = rows[kpi.kpi_id]
        assert row.one("td", "owner").text() == kpi.owner
        open_actions = actions[(actions["kpi_id"] == kpi.kpi_id) & actions["status"].isin(OPEN_ACTION_STATUSES)]
        listed = row.one("td", "open-actions").select("li")
        assert [li.text().split(" (")[0] for li in listed] == list(open_actions["action"])
    assert "Automate the failover runbook" in rows["mttr"].text(), "the demo data has mttr red in March"
    assert "overdue" in rows["mttr"].text()


def test_comments_show_beside_their_kpi_and_in_the_summary_escaped(dom, html):
    rows = dom.one("section", id="scorecard").keyed("data-kpi-id", "tr", "kpi-row")
    assert [p.text() for p in rows["mttr"].select("p", "kpi-comment")] == [
        "Two long incidents waited for a manual failover. — incident-manager"]
    assert [p.text() for p in rows["availability"].select("p", "kpi-comment")] == [
        "Storage <b>outages</b> & a network fault. — sre-lead"]  # March's only: February's is another period
    assert "Storage &lt;b&gt;outages&lt;/b&gt; &amp; a network fault." in html
    assert not rows["deployment_frequency"].select(cls="kpi-comment")
    summary = dom.one(id="summary-comments").keyed("data-kpi-id", "li")
    assert list(summary) == ["availability", "mttr"]  # in config order, whatever order the file had


# ---------------------------------------------------------------------------------------------
# Trends, strategy map, operations, actions, dictionary


def test_every_kpi_has_a_trend_chart_of_its_last_periods_with_its_limits(dom, tables, config):
    charts = dom.one("section", id="trends").keyed("data-kpi-id", "div", "kpi-chart")
    assert list(charts) == [kpi.id for _, _, kpi in config.iter_kpis()]
    specs = json.loads(dom.one("script", id="chart-specs").text())
    march = of_period(tables["kpi_scores"], MARCH).set_index("kpi_id")
    for kpi_id, chart in charts.items():
        spec = specs[chart.attrs["data-chart"]]
        data = {layer["mark"]["type"]: spec["datasets"][layer["data"]["name"]] for layer in spec["layer"]}
        shown_periods = {row["period"] for row in data["point"]}
        assert shown_periods == {"2024-01-01", "2024-02-01", "2024-03-01"}, kpi_id  # every period there is (<= 12)
        march_limits = {row["limit"]: row["y"] for row in data["rule"] if row["period_start"].startswith("2024-03")}
        expected = {name: march.at[kpi_id, name] for name in ("threshold", "target", "stretch")
                    if pd.notna(march.at[kpi_id, name])}  # fmt: skip
        assert march_limits == expected, kpi_id
        assert {row["zone"] for row in data["rect"]} <= {"red", "amber", "green", "blue"}


def test_trend_charts_give_the_y_axis_one_width_and_show_figures_with_their_unit(dom, tables):
    """Labels "6" and "16,000" take the same room, so the plots of a grid of charts line up left to right;
    the tooltips read like the table ("14,853.00 EUR")."""
    specs = json.loads(dom.one("script", id="chart-specs").text())
    march = of_period(tables["kpi_scores"], MARCH).set_index("kpi_id")
    for key, spec in specs.items():
        if not key.startswith("kpi-"):
            continue
        kpi_id = key.removeprefix("kpi-")
        y_axes = [layer["encoding"]["y"].get("axis") for layer in spec["layer"] if "axis" in layer["encoding"]["y"]]
        assert [axis["minExtent"] for axis in y_axes] == [Y_AXIS_EXTENT], kpi_id
        unit = march.at[kpi_id, "unit"]
        last = layer_data(spec, "point")[-1]
        assert last["shown"] == format_number(march.at[kpi_id, "value"], unit), kpi_id
        assert {row["shown"] for row in layer_data(spec, "rule")} >= {
            format_number(march.at[kpi_id, limit], unit) for limit in ("target",)}, kpi_id


def test_trend_charts_hold_at_most_twelve_periods(config, tables):
    scores = tables["kpi_scores"]
    months = pd.date_range("2023-01-01", "2024-03-01", freq="MS", tz="UTC")
    template = of_period(scores, MARCH)
    long_history = pd.concat([template.assign(period_start=month, period_end=month + pd.offsets.MonthBegin())
                              for month in months], ignore_index=True)  # fmt: skip
    frames = frames_of(tables, kpi_scores=long_history, node_scores=tables["node_scores"].iloc[0:0])
    report = build_report(frames, config.scorecard, pd.Timestamp(NOW))
    spec = report.charts[0].spec
    points = layer_data(spec, "point")
    assert [row["period"] for row in points] == [f"{m:%Y-%m-%d}" for m in months[-12:]]


def test_a_partial_periods_point_is_drawn_hollow_and_says_what_it_covers(dom, tables):
    """The 90 days begin in January: its figures miss the month's first weeks, so its point is hollow."""
    kpis = tables["kpi_scores"]
    january = kpis[kpis["period_start"] == pd.Timestamp("2024-01-01", tz="UTC")]
    assert not january["complete"].any() and (january["data_from"] > january["period_start"]).all()
    specs = json.loads(dom.one("script", id="chart-specs").text())
    for key, spec in specs.items():
        if not key.startswith("kpi-"):
            continue
        marks = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "point")
        assert marks["encoding"]["fillOpacity"] == {"field": "fill", "type": "quantitative", "scale": None}, key
        for point in layer_data(spec, "point"):
            partial = point["period"] == "2024-01-01"
            assert point["fill"] == (0.0 if partial else 1.0), (key, point["period"])
            assert point["covers"].startswith("partial: data from 2024-01-") if partial else (
                point["covers"] == "complete period"), (key, point["period"])


def test_a_report_of_a_period_that_is_not_complete_says_so_under_its_title(config, tables):
    april = pd.Timestamp("2024-04-01", tz="UTC")
    assert not of_period(tables["kpi_scores"], april)["complete"].any()  # the running month
    report = build_report(frames_of(tables), config.scorecard, pd.Timestamp(NOW), april)
    assert report.covers == "running: 1 of 30 days"
    banner = parse(render_report(report)).one("p", **{"data-testid": "period-covers"})
    assert "running: 1 of 30 days" in banner.text()
    complete = build_report(frames_of(tables), config.scorecard, pd.Timestamp(NOW))
    assert complete.period_start == MARCH and complete.covers == ""
    assert 'data-testid="period-covers"' not in render_report(complete)


def frames_of(tables: dict[str, pd.DataFrame], **given: pd.DataFrame) -> ReportFrames:
    """ReportFrames of the warehouse's tables with `given` ones replaced; the review and alert tables empty."""
    frames = ReportFrames(kpi_scores=tables["kpi_scores"], node_scores=tables["node_scores"],
                          weekly_metrics=tables["metric_values"].query("grain == 'week'"),
                          comments=tables["kpi_comments"].iloc[0:0], actions=tables["actions"].iloc[0:0],
                          alerts=tables["alerts_sent"].iloc[0:0], dictionary=tables["metric_dictionary"])  # fmt: skip
    return replace(frames, **given)


def test_the_strategy_map_draws_the_objectives_and_the_supports_edges(dom, config):
    section = dom.one("section", id="strategy-map")
    nodes = section.keyed("data-objective-id", "li", "map-node")
    objectives = list(config.scorecard.objectives())
    assert list(nodes) == [objective.id for _, objective in objectives]
    edges = [(li.attrs["data-source"], li.attrs["data-target"], li.text()) for li in section.select("li", "map-edge")]
    names = {objective.id: objective.name for _, objective in objectives}
    assert edges == [(o.id, target, f"{o.name} → {names[target]}") for _, o in objectives for target in o.supports]
    spec = json.loads(dom.one("script", id="chart-specs").text())["strategy-map"]
    assert {row["edge"] for row in layer_data(spec, "line")} == {text for _, _, text in edges}  # a line per edge
    assert len(layer_data(spec, "point")) == len(edges)  # and an arrowhead
    assert {row["objective_id"] for row in layer_data(spec, "rect")} == set(nodes)
    assert section.one("div", "map-chart").attrs["data-chart"] == "strategy-map"


def drawn_map(spec: dict) -> tuple[dict[str, list[tuple[float, float]]], dict[str, tuple], pd.DataFrame]:
    """What the map's spec draws: each edge's line (points in order), each box (x1, x2, y1, y2), the arrowheads."""
    lines = pd.DataFrame(layer_data(spec, "line")).sort_values(["edge", "step"])
    routes = {edge: list(zip(rows["x"], rows["y"], strict=True)) for edge, rows in lines.groupby("edge", sort=False)}
    boxes = {row["objective_id"]: (row["x1"], row["x2"], row["y1"], row["y2"]) for row in layer_data(spec, "rect")}
    return routes, boxes, pd.DataFrame(layer_data(spec, "point")).set_index("edge")


def passes_through(route: list[tuple[float, float]], box: tuple) -> bool:
    """Whether a point of the polyline (sampled every 1/200 of each segment) lies inside the box, not on its edge."""
    x1, x2, y1, y2 = box
    for (ax, ay), (bx, by) in zip(route, route[1:], strict=False):
        for t in (step / 200 for step in range(201)):
            x, y = ax + (bx - ax) * t, ay + (by - ay) * t
            if x1 + 1e-9 < x < x2 - 1e-9 and y1 + 1e-9 < y < y2 - 1e-9:
                return True
    return False


def crossings(route: list[tuple[float, float]], other: list[tuple[float, float]]) -> int:
    def turn(p, q, r):
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    return sum(turn(a, b, c) * turn(a, b, d) < 0 and turn(c, d, a) * turn(c, d, b) < 0
               for a, b in zip(route, route[1:], strict=False) for c, d in zip(other, other[1:], strict=False))


def map_scorecard(rows: list[list[str]], supports: dict[str, list[str]]) -> ScorecardConfig:
    """A scorecard of one perspective per row (first = top), objective ids as given, each with one KPI."""
    kpi = {"name": "K", "metric": "manual:k", "unit": "count", "direction": "higher_is_better", "baseline": 0,
           "target": 1}
    return ScorecardConfig.model_validate({"name": "Map", "perspectives": [
        {"id": f"p{row}", "name": f"Row {row}", "objectives": [
            {"id": objective, "name": objective.upper(), "supports": supports.get(objective, []),
             "kpis": [{**kpi, "id": f"kpi_{objective}"}]} for objective in objectives]}
        for row, objectives in enumerate(rows)]})  # fmt: skip


# Every kind of line: neighbours in a row, further apart in the top row and in another, one row up, two and three
# rows up and down, to the middle of a row and to its ends, several lines on one box side, a lone box in a row.
AWKWARD_MAP = map_scorecard(
    [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"], ["j"]],
    {"a": ["c", "b"], "d": ["f"], "e": ["b"], "g": ["b"], "i": ["a"], "b": ["h"], "j": ["e", "a", "c"],
     "h": ["i"], "f": ["c"]})  # fmt: skip


@pytest.mark.parametrize("scorecard", ["demo", "awkward"])
def test_no_line_of_the_map_runs_through_a_box(scorecard, config):
    drawn = strategy_map(config.scorecard if scorecard == "demo" else AWKWARD_MAP, {})
    routes, boxes, _ = drawn_map(drawn.spec)
    assert len(routes) == len(drawn.edges)
    alt.LayerChart.from_dict(drawn.spec)
    for edge, route in routes.items():
        assert [box for box, where in boxes.items() if passes_through(route, where)] == [], edge


def test_a_line_that_skips_a_row_goes_round_the_boxes_in_a_side_lane(config):
    """Ship small changes often → Invest in change, not just run climbs past the customer row: it runs up a lane
    left of every box instead of across "Services customers can rely on", and crosses one line only."""
    drawn = strategy_map(config.scorecard, {})
    routes, boxes, _ = drawn_map(drawn.spec)
    left_of_boxes = min(x1 for x1, _, _, _ in boxes.values())
    right_of_boxes = max(x2 for _, x2, _, _ in boxes.values())
    for edge in ("Ship small changes often → Invest in change, not just run",
                 "Engaged teams → Restore service fast"):
        lane = [(a, b) for a, b in zip(routes[edge], routes[edge][1:], strict=False)
                if a[0] == b[0] and abs(b[1] - a[1]) > 1]  # a vertical stretch longer than a row
        assert len(lane) == 1 and not left_of_boxes <= lane[0][0][0] <= right_of_boxes, edge
    crossed = {edge: sorted(other for other, line in routes.items() if other != edge and crossings(route, line))
               for edge, route in routes.items()}
    assert crossed["Ship small changes often → Invest in change, not just run"] == [
        "Services customers can rely on → Spend within budget"]
    assert crossed["Engaged teams → Restore service fast"] == []
    assert sum(len(others) for others in crossed.values()) == 2  # that one crossing, seen from both lines


def test_the_map_lays_perspectives_bottom_up_and_points_arrows_at_the_effect(config):
    scorecard = config.scorecard
    drawn = strategy_map(scorecard, {"fast_flow": "green"})
    rows = {node.perspective_id: node.y for node in drawn.nodes}
    assert rows == {"financial": 3.0, "customer": 2.0, "internal_process": 1.0, "learning_growth": 0.0}
    by_id = {node.objective_id: node for node in drawn.nodes}
    assert by_id["fast_flow"].status_word == status_word("green")
    assert by_id["skilled_engineers"].status == "no_data"
    routes, boxes, arrows = drawn_map(drawn.spec)
    for edge in drawn.edges:
        tip = arrows.loc[edge.text]
        x1, x2, y1, y2 = boxes[edge.target]
        on_edge = (x1 <= tip.x <= x2 and tip.y in (pytest.approx(y1), pytest.approx(y2))) or (
            y1 <= tip.y <= y2 and tip.x in (pytest.approx(x1), pytest.approx(x2)))
        assert on_edge, edge.text  # the tip touches the effect's box
        line_end = routes[edge.text][-1]
        assert not passes_through([line_end, (tip.x, tip.y)], boxes[edge.target])  # the line stops under the head
    assert arrows.loc["Engaged teams → Skilled engineers", "angle"] == pytest.approx(-90)  # along the row, leftwards
    assert arrows.loc["Ship small changes often → Invest in change, not just run", "angle"] == pytest.approx(0)  # up
    assert arrows.loc["Engaged teams → Restore service fast", "angle"] == pytest.approx(-90)  # in from the lane


def test_the_map_draws_lines_beneath_the_boxes_and_big_arrowheads_above(config):
    spec = strategy_map(config.scorecard, {}).spec
    marks = [layer["mark"] for layer in spec["layer"]]
    kinds = [mark["type"] for mark in marks]
    assert kinds.index("line") < kinds.index("rect")  # the boxes cover the lines
    assert kinds.index("point") > len(kinds) - 1 - kinds[::-1].index("rect")  # the arrowheads are on top
    arrowhead = marks[kinds.index("point")]
    assert arrowhead["size"] >= 300 and arrowhead["filled"]  # 18 px long: which way a line runs is plain


def test_operations_shows_twelve_weeks_of_figures_per_service(dom, tables, config):
    section = dom.one("section", id="operations")
    services = section.keyed("data-service", "section", "service")
    assert sorted(services) == sorted(config.services)
    weekly = tables["metric_values"].query("grain == 'week'")
    weeks = [f"{week:%Y-%m-%d}" for week in pd.date_range(end="2024-03-25", periods=12, freq="7D")]
    for service, block in [*services.items(), ("all", section.one("section", "organisation"))]:
        table = block.one("table", "weekly")
        assert [th.attrs.get("data-metric") for th in table.select("th")][1:] == list(OPERATIONS_METRICS)
        rows = table.one("tbody").select("tr")
        assert [row.attrs["data-week"] for row in rows] == weeks, service
        figures = weekly[(weekly["service"] == service) & (weekly["period_start"] == pd.Timestamp(weeks[-1], tz="UTC"))]
        cells = [td.text() for td in rows[-1].select("td")][1:]
        expected = figures.set_index("metric")["value"]
        assert cells == [format_number(expected.get(m), METRICS[m].unit) for m in OPERATIONS_METRICS], service


def test_the_action_log_flags_the_overdue_actions(dom):
    rows = dom.one("section", id="actions").keyed("data-action-id", "tr", "action")
    assert list(rows) == ["A-4", "A-3", "A-5", "A-1", "A-2"]  # by due day, then id
    overdue = {action_id for action_id, row in rows.items() if "overdue" in row.classes}
    assert overdue == {"A-1", "A-3"}  # open and due before 2024-04-02; done, dropped and later ones are not
    assert "overdue" in rows["A-1"].text() and "overdue" not in rows["A-2"].text()
    assert "Services customers can rely on" in rows["A-3"].text()  # an objective's action names the objective


def test_the_dictionary_defines_every_metric(dom, tables):
    rows = dom.one("section", id="dictionary").keyed("data-metric", "tr")
    dictionary = tables["metric_dictionary"]
    assert set(rows) == set(dictionary["name"]) == set(METRICS)
    for metric in dictionary.itertuples():
        row = rows[metric.name]
        assert [row.one("td", cls).text() for cls in ("definition", "unit", "direction", "source-fields")] == [
            " ".join(metric.definition.replace("`", "").split()), metric.unit, metric.direction, metric.source_fields]
        code = [element.text() for element in row.one("td", "definition").select("code")]
        assert code == re.findall(r"`([^`]+)`", metric.definition), metric.name  # Markdown's `code` as <code>
    mtbf = [element.text() for element in rows["mtbf"].one("td", "definition").select("code")]
    assert mtbf == ["services:", "all"], "the dictionary's mtbf definition has two code spans"


def test_inline_code_is_escaped_first_then_marked_up():
    assert inline_code("the `all` row") == Markup("the <code>all</code> row")
    assert inline_code("<b>bold</b> & `a<b>` and a lone ` tick") == Markup(
        "&lt;b&gt;bold&lt;/b&gt; &amp; <code>a&lt;b&gt;</code> and a lone ` tick")
    assert inline_code("no code") == "no code" and isinstance(inline_code(""), Markup)


# ---------------------------------------------------------------------------------------------
# --period, errors, the default directory and the index


def test_period_reports_an_earlier_period_and_the_index_lists_both(scored, written):
    result = report_command(scored["config"], "--out", str(written["out"]), "--period", "2024-02-17")
    assert result.exit_code == 0, result.output
    february = written["out"] / "it_balanced_scorecard-2024-02-01.html"
    assert result.stdout.splitlines()[0] == f"report: {february}"
    dom = parse(february.read_text(encoding="utf-8"))
    assert "February 2024" in dom.one("section", id="summary").text()
    rows = dom.one("section", id="scorecard").keyed("data-kpi-id", "tr", "kpi-row")
    assert [p.text() for p in rows["availability"].select("p", "kpi-comment")] == [
        "February: one short outage. — sre-lead"]
    links = [a.attrs["href"] for a in parse((written["out"] / "index.html").read_text()).select("a")]
    assert links == [REPORT_NAME, february.name]  # newest period first


def test_an_unknown_period_is_exit_2_naming_the_periods_there_are(scored, tmp_path):
    result = report_command(scored["config"], "--out", str(tmp_path), "--period", "2023-06-01")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("error: --period 2023-06-01: no scores for that period in the warehouse (periods: "
                             "2024-01-01, 2024-02-01, 2024-03-01, 2024-04-01)\n")
    assert list(tmp_path.iterdir()) == []


def test_a_period_that_is_not_a_date_is_one_line_and_exit_2(scored):
    result = report_command(scored["config"], "--period", "last month")
    assert (result.exit_code, result.stderr) == (2, "error: --period 'last month' is not a date (use YYYY-MM-DD)\n")


def test_an_out_that_cannot_be_written_is_one_line_and_exit_2(scored, tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    result = report_command(scored["config"], "--out", str(not_a_directory))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: {not_a_directory}: cannot write the report there (")
    assert result.stderr.count("\n") == 1


def test_a_config_error_or_no_warehouse_is_one_line_and_exit_2(tmp_path, data_dir):
    from demo_files import write_config

    broken = tmp_path / "broken.yaml"
    broken.write_text("scorecard:\n  name: x\n  colour: red\n")
    result = report_command(broken)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    result = report_command(write_config(tmp_path, data_dir))
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
    assert "run scorecard run or scorecard backfill first" in result.stderr
    assert not (tmp_path / "warehouse.db").exists() and not (tmp_path / "reports").exists()


def test_without_out_the_report_goes_to_report_dir_beside_the_config(scored):
    result = report_command(scored["config"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"report: {scored['config'].parent.resolve() / 'published' / REPORT_NAME}"


# ---------------------------------------------------------------------------------------------
# The asset and the run summary


def test_the_asset_writes_the_report_to_report_dir_with_its_path_in_metadata(scored, monkeypatch):
    monkeypatch.setenv(NOW_ENV, NOW)
    config_path = scored["config"]
    target = config_path.parent.resolve() / "published" / REPORT_NAME
    target.unlink(missing_ok=True)
    resources = {"scorecard": ScorecardConfigResource(path=str(config_path)), "warehouse": WarehouseResource(),
                 "progress": ProgressReporter()}
    result = materialize([scorecard_report], partition_key="2024-04-01", resources=resources,
                         instance=DagsterInstance.ephemeral())  # fmt: skip
    assert result.success
    metadata = result.asset_materializations_for_node("scorecard_report")[0].metadata
    assert metadata["path"].value == str(target) and metadata["period"].value == "2024-03-01"
    assert target.is_file() and parse(target.read_text()).select("tr", "kpi-row")


def test_before_any_score_the_asset_writes_no_report_and_the_run_goes_on(tmp_path, data_dir):
    from demo_files import write_config

    config_path = write_config(tmp_path, data_dir)
    resources = {"scorecard": ScorecardConfigResource(path=str(config_path)),
                 "warehouse": WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.db'}"),
                 "progress": ProgressReporter()}  # fmt: skip
    result = materialize([scorecard_report], partition_key="2024-03-11", resources=resources,
                         instance=DagsterInstance.ephemeral())  # fmt: skip
    assert result.success
    metadata = result.asset_materializations_for_node("scorecard_report")[0].metadata
    assert metadata["written"].value is False and "no scores for 'IT Balanced Scorecard'" in metadata["reason"].value
    assert not (tmp_path / "reports").exists()


def test_the_asset_runs_after_the_scores_the_review_and_the_alerts():
    report = next(asset for asset in ASSETS if "scorecard_report" in {k.to_user_string() for k in asset.keys})
    upstream = {key.to_user_string() for key in report.asset_deps[report.key]}
    assert upstream == {"kpi_scores", "node_scores", "kpi_comments", "actions", "kpi_alerts"}
    assert report.partitions_def is not None and report.backfill_policy is not None
    assert "report" in STEPS


def test_backfill_prints_where_the_report_is(scored):
    line = next(line for line in scored["backfill"].splitlines() if line.startswith("  report "))
    path = Path(line.split(maxsplit=1)[1])
    assert path == scored["config"].parent.resolve() / "published" / REPORT_NAME


# ---------------------------------------------------------------------------------------------
# The view model on its own


def test_choose_period_takes_the_latest_ended_or_the_one_holding_the_day(tables):
    scores = tables["kpi_scores"]
    assert choose_period(scores, pd.Timestamp(NOW)) == MARCH
    assert choose_period(scores, pd.Timestamp("2024-03-20", tz="UTC")) == FEBRUARY
    assert choose_period(scores, pd.Timestamp(NOW), pd.Timestamp("2024-02-29T23:00", tz="UTC")) == FEBRUARY
    with pytest.raises(ReportError, match="no scores in the warehouse yet"):
        choose_period(scores.iloc[0:0], pd.Timestamp(NOW))


def test_status_changes_put_the_worsened_first_and_moves_rank_by_size():
    def scores(statuses, performances):
        return pd.DataFrame({"kpi_id": ["a", "b", "c"], "kpi_name": ["A", "B", "C"], "status": statuses,
                             "performance": performances})  # fmt: skip

    before, now = scores(["green", "red", "amber"], [1.0, 0.2, 0.8]), scores(["blue", "green", "red"], [1.5, 1.0, 0.1])
    assert [(c.kpi_id, c.text) for c in status_changes(now, before)] == [
        ("c", "▲ amber → ■ red"), ("a", "● green → ◆ blue"), ("b", "■ red → ● green")]
    assert [c.kpi_id for c in biggest_moves(now, before, count=2)] == ["b", "c"]
    assert biggest_moves(now, before)[0].text == "+80.0 pts of performance (20.0% → 100.0%)"
    assert status_changes(now, before.iloc[0:0]) == []


def test_weekly_figures_always_show_twelve_weeks_and_a_dash_without_data():
    rows = pd.DataFrame({"metric": ["mttr", "availability"], "service": ["checkout", "checkout"], "grain": "week",
                         "period_start": pd.Timestamp("2024-03-25", tz="UTC"), "value": [2.5, 99.5]})  # fmt: skip
    [checkout, search] = weekly_figures(rows, ["checkout", "search"], pd.Timestamp("2024-04-01", tz="UTC"))
    assert [week for week, _ in checkout.weeks] == [f"{w:%Y-%m-%d}" for w in
                                                     pd.date_range(end="2024-03-25", periods=12, freq="7D")]
    columns = [metric for metric, _, _ in checkout.metrics]
    last = dict(zip(columns, checkout.weeks[-1][1], strict=True))
    assert (last["mttr"], last["availability"], last["mtbf"]) == ("2.50\u00a0h", "99.50%", "—")
    assert {cell for _, cells in search.weeks for cell in cells} == {"—"}


@pytest.mark.parametrize("direction, expected", [
    ("higher_is_better", {"red": (0.0, 3.0), "amber": (3.0, 4.0), "green": (4.0, 6.0), "blue": (6.0, 10.0)}),
    ("lower_is_better", {"red": (10.0, 3.0), "amber": (3.0, 4.0), "green": (4.0, 6.0), "blue": (6.0, 0.0)}),
])  # fmt: skip
def test_the_status_bands_follow_the_direction(direction, expected):
    history = pd.DataFrame({"period_start": [MARCH], "period_end": [MARCH + pd.offsets.MonthBegin()],
                            "direction": [direction], "threshold": [3.0], "target": [4.0], "stretch": [6.0]})
    bands = band_rows(history, low=0.0, high=10.0)
    assert {row.zone: (row.low, row.high) for row in bands.itertuples()} == expected


def test_without_threshold_or_stretch_only_the_bands_that_exist_are_drawn():
    history = pd.DataFrame({"period_start": [MARCH], "period_end": [MARCH + pd.offsets.MonthBegin()],
                            "direction": ["higher_is_better"], "threshold": [float("nan")], "target": [4.0],
                            "stretch": [float("nan")]})  # fmt: skip
    bands = band_rows(history, low=0.0, high=10.0)
    assert {row.zone: (row.low, row.high) for row in bands.itertuples()} == {"green": (4.0, 10.0)}


def test_empty_review_tables_render(tables, config, dom):
    frames = frames_of(tables)
    page = parse(render_report(build_report(frames, config.scorecard, pd.Timestamp(NOW))))
    assert "No actions recorded" in page.one("section", id="actions").text()
    assert "No commentary for this period" in page.one(id="summary-comments").text()
    assert not page.select("tr", "action")
    assert len(page.select("tr", "kpi-row")) == len(dom.select("tr", "kpi-row"))


# ---------------------------------------------------------------------------------------------
# Reading through the Warehouse, on each database


def test_read_frames_keeps_the_scorecards_own_rows_on_each_database(warehouse):
    mini = read_config(ROOT / "tests" / "data" / "mini_scorecard.yaml")
    values = pd.DataFrame({"kpi_id": ["it_spend", "it_spend"], "period_start": [pd.Timestamp("2026-09-01", tz="UTC"),
                           pd.Timestamp("2026-10-01", tz="UTC")], "value": [106.0, 102.0]})  # fmt: skip
    kpi_scores, node_scores = score_scorecard(mini, None, values)
    periods = sorted(kpi_scores["period_start"].unique())
    warehouse.replace_scores(mini.scorecard.name, kpi_scores, node_scores, periods)
    other = "Another Scorecard"
    warehouse.replace_scores(other, kpi_scores.assign(scorecard=other), node_scores.assign(scorecard=other), periods)
    warehouse.replace_review(mini.scorecard.name, pd.DataFrame({
        "kpi_id": ["it_spend"], "period_start": [pd.Timestamp("2026-10-01", tz="UTC")], "comment": ["Back on plan."],
        "author": ["cfo"]}), pd.DataFrame(columns=["action_id", "kpi_id", "objective_id", "action", "owner", "due",
                                                   "status"]))  # fmt: skip
    frames = read_frames(warehouse, mini.scorecard)
    assert set(frames.kpi_scores["scorecard"]) == {mini.scorecard.name}
    assert len(frames.kpi_scores) == len(kpi_scores) and list(frames.comments["comment"]) == ["Back on plan."]
    report = build_report(frames, mini.scorecard, pd.Timestamp("2026-11-15", tz="UTC"))
    assert report.period_label == "October 2026" and report.previous_label == "September 2026"
    spend = next(kpi for kpi in report.kpis if kpi.kpi_id == "it_spend")
    assert (spend.value, spend.word, [c.text for c in spend.comments]) == ("102.00%", status_word("amber"),
                                                                          ["Back on plan."])  # fmt: skip
    assert [change.text for change in report.status_changes] == [f"{status_word('red')} → {status_word('amber')}"]
    assert len(parse(render_report(report)).select("tr", "kpi-row")) == 3


def test_the_index_links_only_the_report_files_the_report_writes(tmp_path):
    for name in ("it_balanced_scorecard-2026-11-01.html", "javascript:alert(1)-2026-01-01.html",
                 "notes-draft.html", "Other-2026-10-01.html", "it_balanced_scorecard-2026-10-01.html.bak"):
        (tmp_path / name).write_text("x")
    links = [a.attrs["href"] for a in parse(render_index(tmp_path)).select("a")]
    assert links == ["it_balanced_scorecard-2026-11-01.html"]
