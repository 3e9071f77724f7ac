"""The HTML report on disk: a `Report` (pipelines.views.report) through the Jinja2 templates in
pipelines/views/templates/ (autoescaped) into ONE self-contained file: inline CSS, the chart specs as JSON, and
the charting library's JavaScript (vega-embed, pipelines.views.charts) inlined once. Nothing is fetched when the
file is opened.

Files in the report directory: `<scorecard slug>-<period start>.html` per period (a later run of the same period
replaces it), and `index.html`, rewritten each time, linking every report there, newest period first.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from pipelines.config import Config
from pipelines.views.charts import STATUS_COLOURS, javascript_bundle
from pipelines.views.report import Report, ReportFrames, build_report

INDEX = "index.html"
REPORT_NAME = re.compile(r"(?P<slug>[a-z0-9_]+)-(?P<period>\d{4}-\d{2}-\d{2})\.html")  # as report_filename writes
INLINE_CODE = re.compile(r"`([^`\n]+)`")  # Markdown's inline code span, as the metric definitions write it

_templates = Environment(loader=PackageLoader("pipelines.views", "templates"), autoescape=True,
                         undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)  # fmt: skip


def inline_code(text: str) -> Markup:
    """`text` escaped, then its `code` spans as <code> elements: the only markup in the result is those tags."""
    return Markup(INLINE_CODE.sub(r"<code>\1</code>", str(escape(text))))


_templates.filters["inline_code"] = inline_code


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    index: Path
    period: str


def report_dir(config_path: Path, config: Config) -> Path:
    """Where runs write the report: `report.dir`, relative to scorecard.yaml."""
    return config_path.resolve().parent / config.report.dir


def report_filename(report: Report) -> str:
    return f"{report.slug}-{report.period_start:%Y-%m-%d}.html"


def publish(frames: ReportFrames, config: Config, out_dir: Path, as_of: pd.Timestamp,
            day: pd.Timestamp | None = None) -> WrittenReport:
    """Build the report of the period (pipelines.views.report.choose_period) and write it and the index."""
    report = build_report(frames, config.scorecard, as_of, day, services=sorted(config.services) or None)
    return write_report(report, out_dir)


def write_report(report: Report, out_dir: Path) -> WrittenReport:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / report_filename(report)
    _write_atomically(path, render_report(report))
    index = out_dir / INDEX
    _write_atomically(index, render_index(out_dir))
    return WrittenReport(path, index, f"{report.period_start:%Y-%m-%d}")


def render_report(report: Report) -> str:
    specs = {f"kpi-{chart.kpi_id}": chart.spec for chart in report.charts} | {"strategy-map": report.strategy_map.spec}
    return _templates.get_template("report.html").render(
        report=report,
        colours=STATUS_COLOURS,
        chart_specs=_script_json(specs),
        chart_library=_script_text(javascript_bundle()),
        generator=f"it-scorecard {package_version('it-scorecard')}",
    )


def render_index(out_dir: Path) -> str:
    """The reports in `out_dir` (`<slug>-<YYYY-MM-DD>.html`), by scorecard, newest period first. Only names that
    `report_filename` writes are linked: another file there (`javascript:alert(1)-2026-01-01.html`) is not."""
    named = (REPORT_NAME.fullmatch(path.name) for path in out_dir.glob("*-*.html"))
    found = [(match.group(0), match["slug"], match["period"]) for match in named if match]
    newest_first = sorted(found, key=lambda report: report[2], reverse=True)
    return _templates.get_template("index.html").render(reports=sorted(newest_first, key=lambda report: report[1]))


def _script_json(data: object) -> Markup:
    """JSON safe inside a <script> element: no "<", ">" or "&" can end it or open a comment."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _script_text(code: str) -> Markup:
    return Markup(code.replace("</script", "<\\/script"))


def _write_atomically(path: Path, text: str) -> None:
    """Write next to `path` and rename over it: a reader (a browser, a web server) never sees half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
