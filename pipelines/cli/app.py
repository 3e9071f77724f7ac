"""The `scorecard` command line."""

from __future__ import annotations

import shlex
import sys
from datetime import date
from enum import StrEnum
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import Progress, TimeElapsedColumn

from connectors.files.manual import empty_values, read_manual_values
from connectors.files.read import InputFileError
from connectors.simulator.generate import MAX_SERVICES, service_names
from pipelines import clock
from pipelines.cli.output import records, to_csv, to_json
from pipelines.config import Config, read_config
from pipelines.derive import (
    current_period_start,
    derive,
    load_record_files,
    reporting_window,
    score_scorecard,
)
from pipelines.settings import known_services, with_files_source
from pipelines.views.scorecard import in_config_order, latest_period, period_covers
from pipelines.views.terminal import metrics_table, plain, print_table, scorecard_table
from scoring.completeness import COMPLETENESS_COLUMNS
from scoring.config import ConfigError
from scoring.dictionary import METRICS
from scoring.metrics import METRIC_COLUMNS

if TYPE_CHECKING:
    from pipelines.cli.runner import Plan, RunSummary

app = typer.Typer(
    name="scorecard",
    help="IT balanced scorecard: derive DORA and reliability metrics, score them against scorecard.yaml.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

KPI_JSON_COLUMNS = [
    "kpi_id", "kpi_name", "perspective_id", "objective_id", "metric", "period_start", "period_end", "value",
    "unit", "direction", "baseline", "threshold", "target", "stretch", "performance", "status",
    "previous_value", "change", "trend", "dora_band", "weight", "owner", "indicator",
]
NODE_JSON_COLUMNS = [
    "node_type", "node_id", "name", "parent_id", "period_start", "period_end", "score", "status", "coverage",
    "kpis_scored", "kpis_total", "weight", "rollup",
]


class Grain(StrEnum):
    day = "day"
    week = "week"
    month = "month"


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _print_version(wanted: bool) -> None:
    if wanted:
        emit(f"scorecard {package_version('it-scorecard')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool | None, typer.Option("--version", callback=_print_version, is_eager=True,
                                                 help="Print the version and exit.")] = None,
) -> None:
    """IT balanced scorecard: derive DORA and reliability metrics, score them against scorecard.yaml."""


def fail(message: str, code: int = 2) -> typer.Exit:
    say(f"error: {message}")
    return typer.Exit(code)


def current_time() -> pd.Timestamp:
    """Now (UTC), from the one clock; a bad $SCORECARD_NOW is a one-line error."""
    try:
        return clock.now()
    except clock.ClockError as error:
        raise fail(str(error)) from None


def services_option(count: int) -> tuple[str, ...]:
    """The names of `--services` services (connectors.simulator.generate.service_names); a bad count is one line."""
    try:
        return service_names(count)
    except ValueError as error:
        raise fail(f"--services: {error}") from None


ServicesOpt = Annotated[int, typer.Option(
    "--services", help=f"How many services, 1 to {MAX_SERVICES:,} (the demo's 10 names, then service-11, ...).")]


def parse_day(value: str | None, option: str) -> pd.Timestamp | None:
    """The day an option names (YYYY-MM-DD only), as its midnight UTC."""
    day = None if value is None else clock.parse_day(value)
    if value is not None and day is None:
        raise fail(f"{option} '{value}' is not a date (use {clock.DAY_FORMAT})")
    return day


def parse_as_of(value: str | None) -> pd.Timestamp | None:
    """--as-of: a day (its midnight UTC) or an instant with its offset."""
    stamp = None if value is None else clock.parse_instant(value)
    if value is not None and stamp is None:
        raise fail(f"--as-of '{value}' is not an instant (use {clock.INSTANT_FORMAT})")
    return stamp


def window_bounds(date_from: str | None, date_to: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """--from and --to are inclusive days; the engine takes [start, end)."""
    start = parse_day(date_from, "--from")
    last_day = parse_day(date_to, "--to")
    end = last_day.normalize() + pd.Timedelta(days=1) if last_day is not None else None
    if start is not None and end is not None and end <= start:
        raise fail(f"--to {date_to} is before --from {date_from}")
    return start, end


def warn_rejections(loaded) -> None:
    for file_records in loaded.files:
        if len(file_records.rejected):
            say(f"warning: {len(file_records.rejected)} rejected rows in {file_records.path}")
            for line in file_records.rejection_lines():
                say(f"  {line}")
        if file_records.conflicting_duplicates:
            say(f"warning: {file_records.conflicting_duplicates} rows in {file_records.path} repeat a record's "
                "(source, source_id) and updated_at with other content: the later row was kept")


def say(text: str) -> None:
    """One line for a person on stderr, printed literally (terminal.plain: no markup, no control characters)."""
    err_console.print(plain(text))


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


IncidentsOpt = Annotated[Path | None, typer.Option("--incidents", help="Canonical incidents (CSV or JSON lines).")]
ChangesOpt = Annotated[Path | None, typer.Option("--changes", help="Canonical change requests.")]
DeploymentsOpt = Annotated[Path | None, typer.Option("--deployments", help="Canonical deployments.")]
PullRequestsOpt = Annotated[Path | None, typer.Option("--pull-requests", help="Canonical pull requests.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="First day (UTC), inclusive. Default: first record.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day (UTC), inclusive. Default: today.")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Treat this instant as now (open incidents run to it): "
                                                             "YYYY-MM-DD (midnight UTC) or 2026-11-15T12:00:00Z.")]
FormatOpt = Annotated[Format, typer.Option("--format", help="table for people, json or csv for machines.")]


@app.command()
def metrics(
    incidents: IncidentsOpt = None,
    changes: ChangesOpt = None,
    deployments: DeploymentsOpt = None,
    pull_requests: PullRequestsOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    grain: Annotated[Grain, typer.Option("--grain", help="Period length.")] = Grain.month,
    config: Annotated[Path | None, typer.Option("--config", help="scorecard.yaml for metrics settings.")] = None,
    output: FormatOpt = Format.table,
    service: Annotated[list[str] | None, typer.Option("--service", help="Only these services (repeat).")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Only these metrics (repeat).")] = None,
    as_of: AsOfOpt = None,
) -> None:
    """Derive metrics from canonical record files and print them."""
    paths = {"incidents": incidents, "changes": changes, "deployments": deployments, "pull_requests": pull_requests}
    if not any(paths.values()):
        raise fail("give at least one of --incidents, --changes, --deployments, --pull-requests")
    now = parse_as_of(as_of) or current_time()
    start, end = window_bounds(date_from, date_to)
    try:
        scorecard_config = read_config(config) if config else None
        loaded = load_record_files(paths, known_services(scorecard_config))
    except ConfigError as error:
        raise _config_failure(error) from None
    except InputFileError as error:
        raise fail(str(error)) from None
    warn_rejections(loaded)
    start, end = reporting_window(loaded, start, end, now, grain.value)
    values = derive(loaded.frames, grain=grain.value, start=start, end=end, as_of=now, config=scorecard_config)
    values = _only(values, "service", service, "--service")
    values = _only(values, "metric", metric, "--metric")
    rows = records(values, METRIC_COLUMNS)
    if output is Format.json:
        emit(to_json(rows))
    elif output is Format.csv:
        emit(to_csv(rows))
    else:
        print_table(metrics_table(values))


def _only(values: pd.DataFrame, column: str, wanted: list[str] | None, option: str) -> pd.DataFrame:
    """The rows whose `column` is one of `wanted` (all rows when none is given); an unknown name is an error."""
    if not wanted:
        return values
    known = list(METRICS) if column == "metric" else sorted(values[column].unique())
    unknown = [name for name in wanted if name not in known]
    if unknown:
        where = "" if column == "metric" else " in the records or the config"
        raise fail(f"{option} '{unknown[0]}': unknown {column}{where} (known: {', '.join(known)})")
    return values[values[column].isin(wanted)]


@app.command()
def score(
    config: Annotated[Path, typer.Option("--config", help="scorecard.yaml")] = Path("scorecard.yaml"),
    values: Annotated[Path | None, typer.Option("--values", help="CSV of kpi_id,value[,period].")] = None,
    incidents: IncidentsOpt = None,
    changes: ChangesOpt = None,
    deployments: DeploymentsOpt = None,
    pull_requests: PullRequestsOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    output: FormatOpt = Format.table,
    nodes: Annotated[bool, typer.Option("--nodes", help="With --format csv: print the roll-up rows.")] = False,
    as_of: AsOfOpt = None,
) -> None:
    """Score the scorecard: from a spreadsheet of KPI values (pilot mode) and/or canonical record files."""
    paths = {"incidents": incidents, "changes": changes, "deployments": deployments, "pull_requests": pull_requests}
    if values is None and not any(paths.values()):
        raise fail("give --values (a CSV of kpi_id,value[,period]) and/or record files such as --incidents")
    now = parse_as_of(as_of) or current_time()
    start, end = window_bounds(date_from, date_to)
    try:
        scorecard_config = read_config(config)
        review_period = scorecard_config.scorecard.review_period
        default_period = current_period_start(end - pd.Timedelta(1, "ns") if end is not None else now, review_period)
        manual = read_manual_values(values, review_period, default_period) if values else empty_values()
        loaded = load_record_files(paths, known_services(scorecard_config))
    except ConfigError as error:
        raise _config_failure(error) from None
    except InputFileError as error:
        raise fail(str(error)) from None
    _check_kpi_ids(manual, scorecard_config, values)
    warn_rejections(loaded)
    if any(paths.values()):
        start, end = reporting_window(loaded, start, end, now, review_period)
        metric_values = derive(loaded.frames, grain=review_period, start=start, end=end, as_of=now,
                               config=scorecard_config)
    else:
        metric_values = None
    kpi_scores, node_scores = score_scorecard(scorecard_config, metric_values, manual)
    _print_scores(kpi_scores, node_scores, output, nodes, now)


def _check_kpi_ids(manual: pd.DataFrame, config, values_path: Path | None) -> None:
    known = {kpi.id for _, _, kpi in config.iter_kpis()}
    unknown = sorted(set(manual["kpi_id"]) - known)
    if unknown:
        raise fail(f"{values_path}: kpi_id '{unknown[0]}' is not a KPI in the scorecard config"
                   f" (known: {', '.join(sorted(known))})")


def _print_scores(kpi_scores: pd.DataFrame, node_scores: pd.DataFrame, output: Format, nodes: bool,
                  as_of: pd.Timestamp) -> None:
    covers = [column for column in COMPLETENESS_COLUMNS if column in kpi_scores.columns]  # stored rows say it
    kpi_rows = records(kpi_scores, [*KPI_JSON_COLUMNS, *covers], fractions=["performance"])
    node_rows = records(node_scores, [*NODE_JSON_COLUMNS, *covers], fractions=["score", "coverage"])
    if output is Format.json:
        emit(to_json({"kpis": kpi_rows, "nodes": node_rows}))
    elif output is Format.csv:
        emit(to_csv(node_rows if nodes else kpi_rows))
    else:
        print_table(scorecard_table(kpi_scores, node_scores, as_of))


@app.command()
def validate(
    config: Annotated[Path, typer.Option("--config", help="scorecard.yaml")] = Path("scorecard.yaml"),
) -> None:
    """Check scorecard.yaml; print every problem with its path and exit 1 if there is any."""
    try:
        scorecard_config = read_config(config)
    except ConfigError as error:
        for line in error.errors:
            say(line)
        say(f"{config}: {len(error.errors)} problem(s)")
        raise typer.Exit(1) from None
    kpi_count = sum(1 for _ in scorecard_config.iter_kpis())
    emit(f"{config}: valid — {len(scorecard_config.scorecard.perspectives)} perspectives, {kpi_count} KPIs, "
         f"{len(scorecard_config.services)} services")


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Directory for the CSV files.")] = Path(".demo/data"),
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 7,
    days: Annotated[int, typer.Option(min=1, help="Days of history.")] = 90,
    services: ServicesOpt = 10,
    config: Annotated[Path | None, typer.Option("--config", help="Also write values.csv for its manual KPIs.")] = None,
    write_config: Annotated[Path | None, typer.Option(
        "--write-config", help="With --config: write a copy of it whose only source is the generated files, naming "
        "every generated service.")] = None,
    warehouse_url: Annotated[str | None, typer.Option(
        "--warehouse-url", help="With --write-config: the warehouse URL of the copy.")] = None,
) -> None:
    """Write a realistic synthetic data set of canonical CSV files (10 services unless --services)."""
    from connectors.simulator.generate import DatasetSpec, generate_dataset, generate_manual_values, write_dataset

    spec = DatasetSpec(seed=seed, days=days, end=current_time().normalize(), services=services_option(services))
    written = write_dataset(generate_dataset(spec), out)
    if config is not None:
        try:
            scorecard_config = read_config(config)
        except ConfigError as error:
            raise _config_failure(error) from None
        kpi_ranges = {kpi.id: (kpi.baseline, kpi.target if kpi.stretch is None else kpi.stretch)
                      for _, _, kpi in scorecard_config.iter_kpis() if kpi.is_manual}
        values_path = out / "values.csv"
        generate_manual_values(spec, kpi_ranges).to_csv(values_path, index=False)
        written["values"] = values_path
        if write_config is not None:
            written["config"] = with_files_source(config, dict(written), write_config, warehouse_url,
                                                  services=_with_generated(scorecard_config, spec.services))
    elif write_config is not None:
        raise fail("--write-config needs --config (the scorecard to copy)")
    for kind, path in written.items():
        emit(f"{kind}: {path}")


def _with_generated(scorecard_config: Config, names: tuple[str, ...]) -> dict | None:
    """The config's services plus each generated one it does not name, with the simulator's names for it in each
    vendor (None: the config names them all, its services stay as written)."""
    from connectors.simulator.history import service_mapping

    missing = [name for name in names if name not in scorecard_config.services]
    if not missing:
        return None
    kept = {name: mapping.model_dump(exclude_defaults=True) for name, mapping in scorecard_config.services.items()}
    return kept | service_mapping(missing)


@app.command()
def simulate(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: a free one).")] = 8765,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 7,
    days: Annotated[int, typer.Option(min=1, help="Days of history, ending today (UTC).")] = 180,
    services: ServicesOpt = 10,
    fault_rate: Annotated[float, typer.Option(
        "--fault-rate", min=0.0, max=0.9, help="Share of requests answered with a fault (429, 5xx, a dropped "
        "connection, a cut-short body, a slow answer).")] = 0.0,
    delay: Annotated[float, typer.Option(
        "--delay", min=0.0, max=60.0, help="Seconds to wait before each answer (a vendor's latency).")] = 0.0,
    truth_out: Annotated[Path | None, typer.Option(
        "--truth-out", help="Write what is served as canonical files, and the metrics derived from them.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="With --write-config: the scorecard to copy.")] = None,
    write_config: Annotated[Path | None, typer.Option(
        "--write-config", help="With --config: write a copy of it fed by the simulator (GitHub, PagerDuty, Jira, "
        "ServiceNow), with the manual KPI values from a file.")] = None,
    warehouse_url: Annotated[str | None, typer.Option(
        "--warehouse-url", help="With --write-config: the warehouse URL of the copy.")] = None,
) -> None:
    """Serve the vendors' APIs (GitHub, PagerDuty, Jira, ServiceNow) on one port with a seeded history, until
    Ctrl-C."""
    from connectors.simulator.history import build_history, service_mapping
    from connectors.simulator.server import credential_envs, serve, source_sections, vendor_urls
    from pipelines.cli.truth import write_truth

    if (config is None) != (write_config is None):
        raise fail("--write-config and --config go together (the scorecard to copy, and where to write it)")
    names = services_option(services)
    end = current_time().normalize()

    def ready(base_url: str) -> None:
        if write_config is not None:
            _write_simulator_config(config, write_config, base_url, end, seed, days, names, warehouse_url)
        urls = vendor_urls(base_url)
        served = ", ".join(f"{name}: {urls[name]}" for name in ("github", "pagerduty", "jira", "servicenow"))
        latency = f", {delay:g} s before every answer" if delay else ""
        say(f"simulator: {base_url} ({served}); {days} days to {end.date()}, seed {seed}, fault rate "
            f"{fault_rate:g}{latency}; Ctrl-C stops it")
        if write_config is not None:
            envs = credential_envs(source_sections(base_url, service_mapping(names)))
            say(f"config: {write_config} (credentials: any value in {', '.join(envs)})")

    history = build_history(end=end, seed=seed, days=days, services=names)
    if truth_out is not None:
        write_truth(history, truth_out)
    serve(port, history, fault_rate=fault_rate, delay=delay, verbose=False, on_ready=ready)


def _write_simulator_config(config: Path, out: Path, base_url: str, end: pd.Timestamp, seed: int, days: int,
                            services: tuple[str, ...], warehouse_url: str | None) -> None:
    """The scorecard of `config` fed by the simulator at `base_url`, with its manual KPI values and review files
    (comments on the latest ended period, actions due around `end`) from files."""
    from connectors.simulator.generate import DatasetSpec, generate_manual_values
    from connectors.simulator.history import service_mapping
    from connectors.simulator.review import write_demo_review
    from connectors.simulator.server import source_sections
    from pipelines.settings import files_section, write_config_copy

    try:
        scorecard_config = read_config(config)
    except ConfigError as error:
        raise _config_failure(error) from None
    mapping = service_mapping(services)
    values = out.parent / "simulated-files" / "values.csv"
    values.parent.mkdir(parents=True, exist_ok=True)
    spec = DatasetSpec(seed=seed, days=days, end=end, services=tuple(mapping))
    kpi_ranges = {kpi.id: (kpi.baseline, kpi.target if kpi.stretch is None else kpi.stretch)
                  for _, _, kpi in scorecard_config.iter_kpis() if kpi.is_manual}  # fmt: skip
    generate_manual_values(spec, kpi_ranges).to_csv(values, index=False)
    sources = {**source_sections(base_url, mapping), "files": files_section({"values": values}, out)}
    review = files_section(write_demo_review(scorecard_config.scorecard, end, values.parent), out)
    write_config_copy(config, out, sources, services=mapping, warehouse_url=warehouse_url, review=review,
                      written_by="scorecard simulate")  # fmt: skip


RunFromOpt = Annotated[str | None, typer.Option("--from", help="First UTC day, inclusive. Default: yesterday.")]
RunToOpt = Annotated[str | None, typer.Option("--to", help="Last UTC day, inclusive. Default: --from, or yesterday.")]
RunConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="scorecard.yaml (default: $SCORECARD_CONFIG, else ./scorecard.yaml).")
]


@app.command()
def run(config: RunConfigOpt = None, date_from: RunFromOpt = None, date_to: RunToOpt = None) -> None:
    """Pull, derive, score and write for UTC days (default: yesterday): the nightly Dagster job, in one run."""
    first, last = _day_range(date_from, date_to)
    _run_job(config, first, last, show_progress=False)


@app.command()
def backfill(
    date_from: Annotated[str | None, typer.Option("--from", help="First UTC day, inclusive.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last UTC day, inclusive. Default: yesterday.")] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Instead of --from: the last N days.")] = None,
    config: RunConfigOpt = None,
) -> None:
    """Load and score history: the whole range as ONE run of the nightly Dagster job, with a progress bar."""
    if (date_from is None) == (days is None):
        raise fail("give --from DATE or --days N (the last N complete UTC days)")
    first, last = _day_range(date_from, date_to) if days is None else _last_days(days, date_to)
    _run_job(config, first, last, show_progress=True)


def _last_days(days: int, date_to: str | None) -> tuple[date, date]:
    end = parse_day(date_to, "--to")
    last = end.date() if end is not None else clock.previous_day(current_time())
    return last - pd.Timedelta(days=days - 1).to_pytimedelta(), last


@app.command()
def show(
    config: RunConfigOpt = None,
    period: Annotated[str | None, typer.Option("--period", help="A day in the period to show (default: the latest "
                                                                "complete one).")] = None,
    output: FormatOpt = Format.table,
    every_period: Annotated[bool, typer.Option("--all", help="Every stored period (json and csv; the table shows "
                                                             "the latest complete one).")] = False,
) -> None:
    """Print the scored scorecard from the warehouse (what `run` and `backfill` wrote): the period the table shows,
    in every format, unless --all."""
    from pipelines.resources import ScorecardConfigResource, WarehouseResource
    from warehouse import Warehouse, WarehouseError

    chosen = parse_day(period, "--period")
    try:
        scorecard_config = ScorecardConfigResource(path=str(config) if config else None).load()
        with Warehouse.open_existing(WarehouseResource().resolve_url(scorecard_config)) as warehouse:  # reads only
            kpi_scores, node_scores = warehouse.read_table("kpi_scores"), warehouse.read_table("node_scores")
    except ConfigError as error:
        raise _config_failure(error) from None
    except WarehouseError as error:
        raise fail(str(error)) from None
    name = scorecard_config.scorecard.name
    kpi_scores = kpi_scores[kpi_scores["scorecard"] == name]
    node_scores = node_scores[node_scores["scorecard"] == name]
    if kpi_scores.empty:
        raise fail(f"no scores for '{name}' in the warehouse yet: run scorecard run or scorecard backfill first")
    if chosen is not None:
        inside = (kpi_scores["period_start"] <= chosen) & (kpi_scores["period_end"] > chosen)
        kpi_scores = kpi_scores[inside]
        node_scores = node_scores[node_scores["period_start"].isin(kpi_scores["period_start"])]
        if kpi_scores.empty:
            raise fail(f"--period {period}: no scores for that period in the warehouse")
    elif not every_period:
        shown = latest_period(kpi_scores, current_time())
        kpi_scores = kpi_scores[kpi_scores["period_start"] == shown]
        node_scores = node_scores[node_scores["period_start"] == shown]
    kpi_scores, node_scores = in_config_order(scorecard_config.scorecard, kpi_scores, node_scores)
    _print_scores(kpi_scores, node_scores, output, False, current_time())


@app.command()
def report(
    out: Annotated[Path | None, typer.Option("--out", help="Directory for the report (default: report.dir of the "
                                                           "config, relative to it).")] = None,
    period: Annotated[str | None, typer.Option("--period", help="A day in the period to report (default: the latest "
                                                                "that has ended).")] = None,
    config: RunConfigOpt = None,
) -> None:
    """Write the HTML scorecard report of a review period from the warehouse: one self-contained file."""
    from pipelines.resources import ScorecardConfigResource, WarehouseResource
    from pipelines.views.render import publish, report_dir
    from pipelines.views.report import ReportError, read_frames
    from warehouse import Warehouse, WarehouseError

    chosen = parse_day(period, "--period")
    now = current_time()
    resource = ScorecardConfigResource(path=str(config) if config else None)
    try:
        scorecard_config = resource.load()
        with Warehouse.open_existing(WarehouseResource().resolve_url(scorecard_config)) as warehouse:  # reads only
            frames = read_frames(warehouse, scorecard_config.scorecard)
    except ConfigError as error:
        raise _config_failure(error) from None
    except WarehouseError as error:
        raise fail(str(error)) from None
    target = out if out is not None else report_dir(resource.config_path, scorecard_config)
    try:
        written = publish(frames, scorecard_config, target, now, chosen)
    except ReportError as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"{target}: cannot write the report there ({error.strerror or error})") from None
    emit(f"report: {written.path}")
    emit(f"index:  {written.index}")


def _day_range(date_from: str | None, date_to: str | None) -> tuple[date, date]:
    start, end = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    last = end.date() if end is not None else (start.date() if start is not None else
                                               clock.previous_day(current_time()))
    first = start.date() if start is not None else last
    if last < first:
        raise fail(f"--to {date_to} is before --from {date_from}")
    return first, last


def _run_job(config: Path | None, first: date, last: date, show_progress: bool) -> None:
    """Run the job; Ctrl-C or SIGTERM at any moment ends it with one line and exit 130 / 143."""
    from pipelines.interrupts import Interrupted, interrupted_line, stop_on_signals

    again = ["scorecard", "backfill" if show_progress else "run", "--from", str(first), "--to", str(last),
             *(["--config", str(config)] if config else [])]  # fmt: skip
    with stop_on_signals():
        try:
            _run_and_report(config, first, last, show_progress)
        except Interrupted as interrupted:
            say(interrupted_line(interrupted, shlex.join(again)))
            raise typer.Exit(interrupted.exit_code) from None


def _run_and_report(config: Path | None, first: date, last: date, show_progress: bool) -> None:
    from connectors.base import SourceError
    from pipelines.cli import runner  # Dagster loads in a second or two: only the commands that run it pay for it
    from warehouse import WarehouseError

    try:
        plan = runner.preflight(config, first, last)
    except ConfigError as error:
        raise _config_failure(error) from None
    except (SourceError, InputFileError, WarehouseError, runner.RangeError, clock.ClockError) as error:
        raise fail(str(error)) from None
    summary = _execute(plan, show_progress)
    if summary.warning:
        say(f"warning: {summary.warning}")
    if not summary.success:
        raise fail(summary.error or "the run failed", code=1)
    emit(_summary_text(plan, summary))
    emit(_periods_text(plan))


def _periods_text(plan: Plan) -> str:
    """The review periods the run's days fall in, each complete or labelled with what it covers."""
    from pipelines.resources import WarehouseResource
    from warehouse import Warehouse

    with Warehouse.open_existing(WarehouseResource().resolve_url(plan.config)) as warehouse:
        periods = warehouse.read_table("scorecard_periods")
    first, after = pd.Timestamp(plan.first, tz="UTC"), pd.Timestamp(plan.last, tz="UTC") + pd.Timedelta(days=1)
    periods = periods[(periods["scorecard"] == plan.config.scorecard.name) & (periods["period_end"] > first)
                      & (periods["period_start"] < after)]  # fmt: skip
    shown = [f"{row['period_start']:%Y-%m-%d} {period_covers(row) or 'complete'}" for _, row in periods.iterrows()]
    return f"  review periods   {'; '.join(shown) or 'none scored'}"


def _execute(plan: Plan, show_progress: bool) -> RunSummary:
    from pipelines.cli import runner

    if not show_progress:
        return runner.execute(plan)
    columns = (*Progress.get_default_columns(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        return runner.execute(plan, runner.BarReporter(bar))


def _checks_text(plan: Plan, summary: RunSummary) -> str:
    parts = []
    if summary.checks_failed:
        parts.append("failed: " + ", ".join(summary.checks_failed))
    if summary.checks_warned:
        parts.append("warning: " + ", ".join(summary.checks_warned))
    if not parts:
        return "all passed"
    from pipelines.resources import DEFAULT_CONFIG

    config = "" if plan.config_path == Path(DEFAULT_CONFIG) else f" --config {shlex.quote(str(plan.config_path))}"
    return "; ".join(parts) + f" (details: scorecard checks{config})"


def _conflicts_text(counts: dict[str, int]) -> str:
    conflicts = counts["same_time_conflicts"]
    return f", same-time duplicates {conflicts:,}: later row kept" if conflicts else ""


def _summary_text(plan: Plan, summary: RunSummary) -> str:
    counts = summary.counts
    span = f"{plan.first}" if plan.days == 1 else f"{plan.first} .. {plan.last} ({plan.days} days)"
    return "\n".join([
        f"scorecard: {span} in one run, {summary.seconds:.1f} s (run {summary.run_id[:8]})",
        f"  records read     {counts['read']:,} (inserted {counts['inserted']:,}, updated {counts['updated']:,}, "
        f"unchanged {counts['unchanged']:,}, rejected {counts['rejected']:,}{_conflicts_text(counts)})",
        f"  metric values    {counts['metrics']:,} rows for the recomputed periods",
        f"  KPI scores       {counts['kpis']:,} rows for the recomputed periods ({counts['nodes']:,} roll-up rows)",
        f"  change links     {counts['links']:,} caused_by_change ({counts['dangling_links']:,} do not hold: "
        "incidents:dangling_change_links)",
        f"  checks           {_checks_text(plan, summary)}",
        f"  warehouse        {plan.warehouse_url}",
        *([f"  report           {summary.report}"] if summary.report else []),
    ])  # fmt: skip


class ChecksFormat(StrEnum):
    table = "table"
    json = "json"


@app.command()
def checks(
    config: RunConfigOpt = None,
    output: Annotated[ChecksFormat, typer.Option("--format", help="table for people, json for machines.")] = (
        ChecksFormat.table),
) -> None:
    """The last run's asset checks with their findings (unmapped entities, overdue actions, escalated KPIs, ...):
    from the Dagster instance when DAGSTER_HOME is set, else as `run` or `backfill` kept them beside the config.
    Exit code 1 when a check of severity ERROR failed (warnings do not change it)."""
    from dataclasses import asdict

    from pipelines.cli import last_run
    from pipelines.resources import ScorecardConfigResource

    try:
        found = last_run.load(ScorecardConfigResource(path=str(config) if config else None).config_path)
    except last_run.LastRunError as error:
        raise fail(str(error)) from None
    if output is ChecksFormat.json:
        emit(to_json(asdict(found)))
    else:
        print_table(last_run.checks_table(found))
    if found.failed:
        raise typer.Exit(1)


def _config_failure(error: ConfigError) -> typer.Exit:
    first = error.errors[0]
    more = f" (and {len(error.errors) - 1} more: run scorecard validate)" if len(error.errors) > 1 else ""
    return fail(f"{first}{more}")


if __name__ == "__main__":
    app()
