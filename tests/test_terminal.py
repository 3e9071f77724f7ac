"""What the terminal prints is text: names, owners, services and messages are shown literally, never read as Rich
markup, and no control character (an escape sequence) reaches the terminal."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from rich.console import Console

from pipelines.views.terminal import metrics_table, plain, print_table, scorecard_table

HOSTILE = ["[/x]", "[link=https://evil.example]click[/link]", "\x1b]8;;https://evil.example\x1b\\hi", "a\x07b\x9bc"]


def printed(table) -> str:
    buffer = io.StringIO()
    print_table(table, Console(file=buffer, force_terminal=True, width=300, color_system="truecolor"))
    return buffer.getvalue()


def scores(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    start, end = pd.Timestamp("2026-10-01", tz="UTC"), pd.Timestamp("2026-11-01", tz="UTC")
    kpis = pd.DataFrame([{
        "scorecard": name, "kpi_id": "k", "kpi_name": name, "objective_id": "o", "period_start": start,
        "period_end": end, "value": 1.0, "target": 2.0, "unit": "count", "performance": 0.5, "status": "red",
        "trend": None, "change": None, "dora_band": None, "owner": name, "indicator": "lagging",
    }])  # fmt: skip
    nodes = pd.DataFrame([
        {"node_type": node_type, "node_id": node_id, "parent_id": parent, "name": name, "period_start": start,
         "period_end": end, "score": 0.5, "status": "red", "coverage": 1.0}
        for node_type, node_id, parent in (("scorecard", "s", None), ("perspective", "p", "s"), ("objective", "o", "p"))
    ])  # fmt: skip
    return kpis, nodes


@pytest.mark.parametrize("name", HOSTILE)
def test_names_and_owners_are_printed_literally_without_control_characters(name):
    output = printed(scorecard_table(*scores(name), pd.Timestamp("2026-12-01", tz="UTC")))
    literal = plain(name).plain
    assert output.count(literal) >= 4  # title, perspective, objective, KPI and owner cells
    assert "\x1b]8;;https://evil.example" not in output  # no hidden terminal hyperlink
    assert not any(ch in output for ch in "\x07\x9b")


def test_a_service_name_in_the_data_is_printed_literally():
    service = "[link=https://evil.example]checkout[/link]"
    metrics = pd.DataFrame([{"metric": "mttr", "service": service, "period_start": pd.Timestamp("2026-10-01", tz="UTC"),
                             "value": 1.0, "unit": "hours", "sample_size": 1}])  # fmt: skip
    output = printed(metrics_table(metrics))
    assert service in output and "\x1b]8;" not in output


def test_plain_keeps_tabs_and_newlines_and_drops_other_control_characters():
    assert plain("a\tb\nc\x00d\x1b[31me\x7f\x85").plain == "a\tb\ncd[31me"
