"""The HTML report in a real browser: headless Chromium loads the file from disk with the network blocked, and the
tests read what is on screen (rendered text, displayed elements, drawn charts) against the warehouse it came from.

Data: the demo path (`scorecard generate --days 90` then `scorecard backfill --days 90`) with the clock fixed at
2024-04-02, so the report shows March 2024, the latest review period that has ended.

The browser is Debian's (`apt-get install chromium chromium-driver`), found on PATH; nothing downloads one. Outside
CI the tests skip when it is not installed; under CI=true that is a failure, as for the PostgreSQL tests. The
full-page screenshot goes to $SCORECARD_TEST_ARTIFACTS/report.png (default: test-artifacts/ in the repository).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from demo_files import ROOT, generate_demo, isolate_cli
from demo_files import cli as run
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.selenium_manager import SeleniumManager
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from pipelines.config import read_config
from pipelines.views.formats import format_fraction, format_number, status_word
from warehouse import Warehouse

ARTIFACTS_ENV = "SCORECARD_TEST_ARTIFACTS"
NOW = "2024-04-02T06:00:00Z"
PERIOD = pd.Timestamp("2024-03-01", tz="UTC")
WINDOW = (1280, 900)
RENDER_TIMEOUT_S = 20


def _browser_unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires the browser tests to run")
    pytest.skip(reason)


def start_chromium() -> webdriver.Chrome:
    """Headless Chromium that cannot reach the network: names do not resolve, the proxy is a closed port, and
    CDP blocks http(s) URLs. Network and console events go to the performance and browser logs."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", chromedriver)) if not path]
    if missing:
        _browser_unavailable(f"no {' or '.join(missing)} on PATH (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--disable-dev-shm-usage",
                     "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to start its sandbox as root
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
    return driver


def _no_selenium_manager(*_args, **_kwargs):
    raise AssertionError("selenium-manager was asked for a driver: it would download one")


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SeleniumManager, "binary_paths", _no_selenium_manager)
        driver = start_chromium()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo path's config, its warehouse backfilled over 90 days of generated files."""
    folder = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as env:
        isolate_cli(env, NOW)
        config = generate_demo(folder, days=90)
        backfill = run("backfill", "--days", "90", "--config", str(config))
        assert backfill.exit_code == 0, backfill.output
    return config


@pytest.fixture(scope="module")
def report_file(scored: Path) -> Path:
    out = scored.parent / "report"
    with pytest.MonkeyPatch.context() as env:
        isolate_cli(env, NOW)
        result = run("report", "--out", str(out), "--config", str(scored))
    assert result.exit_code == 0, result.output
    written = [Path(line.removeprefix("report:").strip()) for line in result.stdout.splitlines()
               if line.startswith("report:")]
    assert len(written) == 1 and written[0].parent == out, result.stdout
    return written[0]


@pytest.fixture(scope="module")
def expected(scored: Path) -> dict:
    """What the report must show: the period's rows from the warehouse, and the config's objectives and services."""
    config = read_config(scored)
    with Warehouse.connect(config.warehouse.url) as warehouse:
        kpis = warehouse.read_table("kpi_scores")
        nodes = warehouse.read_table("node_scores")
        dictionary = warehouse.read_table("metric_dictionary")
    return {
        "kpis": kpis[kpis["period_start"] == PERIOD],
        "nodes": nodes[nodes["period_start"] == PERIOD],
        "objectives": [objective for _, objective in config.scorecard.objectives()],
        "services": sorted(config.services),
        "dictionary": dictionary,
    }


@pytest.fixture(scope="module")
def loaded(browser: webdriver.Chrome, report_file: Path) -> dict:
    """The network requests and console messages of opening the report."""
    browser.get_log("performance")  # start from an empty log
    open_report(browser, report_file)
    return {"requests": _requested_urls(browser), "console": browser.get_log("browser")}


@pytest.fixture
def page(browser: webdriver.Chrome, report_file: Path, loaded: dict) -> webdriver.Chrome:
    """The browser on the report, its charts drawn (reopened if a test went elsewhere)."""
    if browser.current_url != report_file.as_uri():
        open_report(browser, report_file)
    return browser


def open_report(browser: webdriver.Chrome, report_file: Path) -> None:
    """Open the report from disk and wait until its charts have drawn and settled."""
    browser.get(report_file.as_uri())
    try:
        WebDriverWait(browser, RENDER_TIMEOUT_S, poll_frequency=0.25).until(_charts_settled())
    except TimeoutException:
        undrawn = _undrawn_charts(browser)
        pytest.fail(f"within {RENDER_TIMEOUT_S}s, " + (f"these charts did not draw: {', '.join(undrawn)}" if undrawn
                                                      else "the charts drew but did not stop changing"))


# A hash of every chart's drawing (SVG markup, or the canvas pixels), or null for a chart not drawn yet.
DRAWINGS_JS = """
const hash = (text) => { let h = 0; for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
                         return h; };
return [...document.querySelectorAll('div.kpi-chart, #strategy-map')].map((chart) => {
  const drawing = chart.querySelector('svg, canvas');
  if (!drawing) return null;
  return hash(drawing.tagName === 'CANVAS' ? drawing.toDataURL() : drawing.outerHTML);
});
"""


def _charts_settled():
    """A wait condition: every chart is drawn and no drawing changed since the previous poll (animations done)."""
    previous: list = []

    def settled(driver: webdriver.Chrome) -> bool:
        if driver.execute_script("return document.readyState") != "complete":
            return False
        drawings = driver.execute_script(DRAWINGS_JS)
        done = bool(drawings) and None not in drawings and previous == [drawings]
        previous[:] = [drawings]
        return done

    return settled


def _undrawn_charts(driver: webdriver.Chrome) -> list[str]:
    charts = driver.find_elements(By.CSS_SELECTOR, "div.kpi-chart, #strategy-map")
    if not charts:
        return ["(no div.kpi-chart or #strategy-map at all)"]
    return [chart.get_attribute("data-kpi-id") or chart.get_attribute("id") for chart in charts
            if not chart.find_elements(By.CSS_SELECTOR, "svg, canvas")]


def _requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the page asked for since the last read of the performance log (blocked or not)."""
    messages = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    return [message["params"]["request"]["url"] for message in messages
            if message["method"] == "Network.requestWillBeSent"]


def shown(element: WebElement) -> str:
    """The element's text as rendered, after checking it is displayed at all."""
    assert element.is_displayed(), element.get_attribute("outerHTML")[:200]
    return element.text


def one(parent, selector: str) -> WebElement:
    found = parent.find_elements(By.CSS_SELECTOR, selector)
    assert len(found) == 1, f"{selector}: {len(found)} elements"
    return found[0]


def by_attribute(parent, selector: str, attribute: str) -> dict[str, WebElement]:
    """The elements matching `selector`, keyed by `attribute`, each key once."""
    found = parent.find_elements(By.CSS_SELECTOR, selector)
    keyed = {element.get_attribute(attribute): element for element in found}
    assert len(keyed) == len(found), f"{selector}: repeated {attribute}"
    return keyed


def as_rendered(text: str) -> str:
    """`text` as WebDriver reads it off the page: the no-break space between a number and its unit as a space."""
    return text.replace("\u00a0", " ")


def drawn_size(element: WebElement) -> tuple[float, float]:
    size = element.size
    return size["width"], size["height"]


# ---------------------------------------------------------------------------------------------
# Self-contained: nothing leaves the machine


def test_the_report_loads_from_disk_without_a_network_request(loaded, report_file):
    assert report_file.as_uri() in loaded["requests"]
    assert [url for url in loaded["requests"] if url.startswith(("http:", "https:"))] == []


def test_the_page_logs_no_error(loaded):
    assert [entry["message"] for entry in loaded["console"] if entry["level"] == "SEVERE"] == []


def test_the_request_check_sees_what_a_page_asks_for(browser, tmp_path):
    """The check above is not blind: a page that asks for a remote image shows up in the log, and is blocked."""
    fetching = tmp_path / "fetching.html"
    fetching.write_text('<!doctype html><img src="https://cdn.example.com/logo.png" alt="">')
    browser.get(fetching.as_uri())
    WebDriverWait(browser, RENDER_TIMEOUT_S).until(
        lambda driver: driver.execute_script("return document.images[0].complete"))
    assert "https://cdn.example.com/logo.png" in _requested_urls(browser)
    assert browser.execute_script("return document.images[0].naturalWidth") == 0


# ---------------------------------------------------------------------------------------------
# What a reader sees


def test_the_summary_shows_the_overall_score_and_status(page, expected):
    nodes = expected["nodes"]
    overall = nodes[nodes["node_type"] == "scorecard"].iloc[0]
    summary = one(page, "section#summary")
    assert shown(one(summary, '[data-testid="overall-score"]')) == format_fraction(overall.score)
    assert shown(one(summary, '[data-testid="overall-status"]')) == status_word(overall.status)


def test_the_summary_shows_every_perspective_with_score_status_and_coverage(page, expected):
    nodes = expected["nodes"]
    perspectives = nodes[nodes["node_type"] == "perspective"]
    shown_by_id = by_attribute(one(page, "section#summary"), ".perspective-summary", "data-perspective-id")
    assert set(shown_by_id) == set(perspectives["node_id"])
    for perspective in perspectives.itertuples():
        text = shown(shown_by_id[perspective.node_id])
        for part in (perspective.name, format_fraction(perspective.score), status_word(perspective.status),
                     format_fraction(perspective.coverage)):
            assert part in text, (perspective.node_id, part, text)


def test_the_red_kpis_are_listed_with_their_owner(page, expected):
    red = expected["kpis"][expected["kpis"]["status"] == "red"]
    assert len(red), "the data set should have a red KPI in the period"
    rows = by_attribute(one(page, "section#summary #red-kpis"), "[data-kpi-id]", "data-kpi-id")
    assert set(rows) == set(red["kpi_id"])
    for kpi in red.itertuples():
        text = shown(rows[kpi.kpi_id])
        assert kpi.kpi_name in text and kpi.owner in text, text


KPI_CELLS = (".value", ".threshold", ".target", ".stretch", ".performance", ".status", ".trend", ".dora-band",
             ".indicator", ".owner")


def test_every_kpi_row_shows_its_figures_owner_and_status_word(page, expected):
    kpis = expected["kpis"]
    rows = by_attribute(one(page, "section#scorecard"), "tr.kpi-row", "data-kpi-id")
    assert set(rows) == set(kpis["kpi_id"])
    for kpi in kpis.itertuples():
        row = rows[kpi.kpi_id]
        cells = {cell: one(row, cell) for cell in KPI_CELLS}
        assert kpi.kpi_name in shown(row)
        assert as_rendered(format_number(kpi.value, kpi.unit)) in shown(cells[".value"]), kpi.kpi_id
        assert as_rendered(format_number(kpi.target, kpi.unit)) in shown(cells[".target"]), kpi.kpi_id
        assert shown(cells[".performance"]) == format_fraction(kpi.performance), kpi.kpi_id
        assert shown(cells[".owner"]) == kpi.owner, kpi.kpi_id
        status = cells[".status"]
        assert shown(status) == status_word(kpi.status), kpi.kpi_id  # the word, not only a colour
        assert f"status-{kpi.status}" in status.get_attribute("class").split(), kpi.kpi_id


def test_every_objective_and_perspective_row_shows_its_status(page, expected):
    nodes = expected["nodes"]
    scorecard = one(page, "section#scorecard")
    for node_type in ("objective", "perspective"):
        rows = by_attribute(scorecard, f"tr.{node_type}-row", f"data-{node_type}-id")
        of_type = nodes[nodes["node_type"] == node_type]
        assert set(rows) == set(of_type["node_id"])
        for node in of_type.itertuples():
            text = shown(rows[node.node_id])
            assert format_fraction(node.score) in text and status_word(node.status) in text, (node.node_id, text)


def test_every_kpi_has_exactly_one_drawn_chart(page, expected):
    charts = page.find_elements(By.CSS_SELECTOR, "div.kpi-chart")
    assert sorted(chart.get_attribute("data-kpi-id") for chart in charts) == sorted(expected["kpis"]["kpi_id"])
    for chart in charts:
        assert chart.is_displayed(), chart.get_attribute("data-kpi-id")
        drawings = chart.find_elements(By.CSS_SELECTOR, "svg, canvas")
        assert drawings and min(drawn_size(drawings[0])) > 50, chart.get_attribute("data-kpi-id")


def test_the_strategy_map_is_drawn_with_a_named_node_per_objective(page, expected):
    section = one(page, "section#strategy-map")
    drawing = section.find_elements(By.CSS_SELECTOR, "svg")
    assert drawing and drawing[0].is_displayed() and min(drawn_size(drawing[0])) > 100
    drawn_text = drawing[0].get_attribute("textContent")
    nodes = by_attribute(section, "li.map-node", "data-objective-id")
    statuses = expected["nodes"].set_index(["node_type", "node_id"])["status"]
    assert list(nodes) == [objective.id for objective in expected["objectives"]]
    for objective in expected["objectives"]:
        assert objective.name in drawn_text, objective.id
        text = shown(nodes[objective.id])
        assert objective.name in text and status_word(statuses["objective", objective.id]) in text, text


def test_the_strategy_map_lists_every_cause_and_effect_edge(page, expected):
    names = {objective.id: objective.name for objective in expected["objectives"]}
    edges = [shown(edge) for edge in one(page, "section#strategy-map").find_elements(By.CSS_SELECTOR, "li.map-edge")]
    wanted = [f"{names[objective.id]} → {names[effect]}" for objective in expected["objectives"]
              for effect in objective.supports]
    assert sorted(edges) == sorted(wanted)


def test_operations_shows_twelve_weeks_per_service(page, expected):
    services = by_attribute(one(page, "section#operations"), "section.service", "data-service")
    assert sorted(services) == expected["services"]
    for service, section in services.items():
        assert service in shown(section)
        weekly = one(section, "table.weekly")
        assert weekly.is_displayed()
        assert len(weekly.find_elements(By.CSS_SELECTOR, "tbody tr")) == 12, service


def test_the_dictionary_defines_every_metric(page, expected):
    rows = by_attribute(one(page, "section#dictionary"), "tr[data-metric]", "data-metric")
    dictionary = expected["dictionary"]
    assert set(rows) == set(dictionary["name"])
    for metric in dictionary.itertuples():
        text = shown(rows[metric.name])
        for part in (metric.definition.replace("`", ""), metric.unit, metric.direction):
            assert part in text, (metric.name, part)
    code = rows["mtbf"].find_elements(By.CSS_SELECTOR, "td.definition code")
    assert [shown(element) for element in code] == ["services:", "all"]  # Markdown's `code`, not raw backticks


# ---------------------------------------------------------------------------------------------
# Layout: on a laptop screen, a narrower one, and on paper

NARROW = (1024, 768)
# A4 landscape less the stylesheet's 10 mm margins, in CSS px (96 to the inch): the page print lays out on.
PRINTED_PAGE = (round((297 - 20) / 25.4 * 96), round((210 - 20) / 25.4 * 96))


@contextmanager
def viewport(driver: webdriver.Chrome, size: tuple[int, int], media: str = "") -> Iterator[None]:
    """The page laid out at `size` CSS px (and for `media`, e.g. print) until the block ends."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": media})
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# The elements in <main> reaching past its right edge, and how far the document scrolls sideways.
OVERFLOW_JS = """
const edge = document.querySelector('main').getBoundingClientRect().right + 0.5;
const past = [...document.querySelectorAll('main *')].filter((element) => element.getBoundingClientRect().right > edge);
return {scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
        past: past.slice(0, 5).map((element) => element.tagName + '.' + (element.getAttribute('class') || ''))};
"""


@pytest.mark.parametrize("size", [WINDOW, NARROW], ids=["1280", "1024"])
def test_nothing_overflows_sideways(page, size):
    with viewport(page, size):
        overflow = page.execute_script(OVERFLOW_JS)
        assert overflow["scroll"] <= page.execute_script("return window.innerWidth"), overflow
        assert overflow["scroll"] == overflow["client"] and overflow["past"] == [], overflow


# Whether each element's text sits on one line: every piece of it (text runs, inline boxes) shares a line box.
ONE_LINE_JS = """
return arguments[0].map((element) => {
  const range = document.createRange();
  range.selectNodeContents(element);
  const rects = [...range.getClientRects()].filter((rect) => rect.width > 0);
  return Math.max(...rects.map((rect) => rect.top)) < Math.min(...rects.map((rect) => rect.bottom));
});
"""


@pytest.mark.parametrize("size", [WINDOW, NARROW], ids=["1280", "1024"])
def test_each_perspective_cards_figures_stay_on_one_line(page, size):
    """"coverage" and "100.0%" do not part, nor the score and its status word."""
    with viewport(page, size):
        cards = page.find_elements(By.CSS_SELECTOR, "#summary .perspective-summary")
        assert cards
        parts = [one(card, selector) for card in cards for selector in (".figures", ".coverage")]
        assert page.execute_script(ONE_LINE_JS, parts) == [True] * len(parts)
        assert all(shown(one(card, ".coverage")).startswith("coverage ") for card in cards)


def test_the_summary_fits_one_screen(page):
    """Title, overall score, perspectives, what changed, red KPIs and escalations without scrolling."""
    bottom = page.execute_script("return document.querySelector('#summary').getBoundingClientRect().bottom")
    assert bottom <= page.execute_script("return window.innerHeight")


# Each KPI chart's plot area (the Vega view's background, not the axes around it): left, right, and its
# figure's left.
PLOTS_JS = """
return [...document.querySelectorAll('div.kpi-chart')].map((chart) => {
  const plot = chart.querySelector('svg .root > g > path.background').getBoundingClientRect();
  return [chart.getBoundingClientRect().left, plot.left, plot.right];
});
"""


@pytest.mark.parametrize("size", [WINDOW, NARROW], ids=["1280", "1024"])
def test_the_kpi_charts_plot_areas_line_up(page, size):
    """However wide a chart's y labels ("6" or "16,000"), the plots in a column of the grid start and end at
    the same x."""
    with viewport(page, size):
        plots = page.execute_script(PLOTS_JS)
    columns: dict[int, set[tuple[int, int]]] = {}
    for figure_left, plot_left, plot_right in plots:
        columns.setdefault(round(figure_left), set()).add((round(plot_left), round(plot_right)))
    assert len(columns) == (2 if size == WINDOW else 1)
    assert all(len(edges) == 1 for edges in columns.values()), columns


# In the map's SVG: the marks' kinds in drawing order, the boxes' screen rectangles, every line sampled every 2 px
# in screen coordinates, and the arrowheads' sizes.
MAP_JS = """
const svg = document.querySelector('#strategy-map svg');
const order = [...svg.querySelectorAll('g.role-mark')].map((group) => group.getAttribute('class').split(' ')[0]);
const boxes = [...svg.querySelectorAll('g.mark-rect path')].map((box) => {
  const r = box.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom]; });
const lines = [...svg.querySelectorAll('g.mark-line path')].map((line) => {
  const matrix = line.getScreenCTM(), length = line.getTotalLength(), points = [];
  for (let at = 0; at <= length; at += 2) {
    const point = line.getPointAtLength(at).matrixTransform(matrix); points.push([point.x, point.y]); }
  return points;
});
const heads = [...svg.querySelectorAll('g.mark-symbol path')].map((head) => {
  const r = head.getBoundingClientRect(); return Math.max(r.width, r.height); });
return {order, boxes, lines, heads};
"""


def test_the_drawn_map_keeps_its_lines_beneath_and_outside_the_boxes_with_big_arrowheads(page, expected):
    drawn = page.execute_script(MAP_JS)
    edges = sum(len(objective.supports) for objective in expected["objectives"])
    order = drawn["order"]
    assert order.index("mark-line") < order.index("mark-rect") < order.index("mark-symbol")
    assert len(drawn["lines"]) == edges and len(drawn["heads"]) == edges
    inside = [(line, box) for line, points in enumerate(drawn["lines"]) for box, (left, right, top, bottom)
              in enumerate(drawn["boxes"]) for x, y in points if left + 1 < x < right - 1 and top + 1 < y < bottom - 1]
    assert inside == []
    assert min(drawn["heads"]) >= 15  # px: which way an arrow points is plain at a glance


PRINT_JS = """
const sections = [...document.querySelectorAll('main > section')];
const figures = [...document.querySelectorAll('figure, .map-chart')];
return {
  breaks: sections.map((section) => [section.id, getComputedStyle(section).breakBefore]),
  summary: document.querySelector('#summary').getBoundingClientRect().bottom + window.scrollY,
  unbroken: figures.every((figure) => getComputedStyle(figure).breakInside === 'avoid'),
  clipped: [...document.querySelectorAll('figure svg, .map-chart svg')].filter((svg) =>
    svg.getBoundingClientRect().right > svg.closest('figure, .map-chart').getBoundingClientRect().right + 0.5).length,
  nav: getComputedStyle(document.querySelector('nav')).display,
};
"""


def test_the_report_prints_a_section_a_page_from_a_one_page_summary(page):
    with viewport(page, PRINTED_PAGE, media="print"):
        printed = page.execute_script(PRINT_JS)
        overflow = page.execute_script(OVERFLOW_JS)
    breaks = dict(printed["breaks"])
    assert breaks.pop("summary") == "auto" and set(breaks.values()) == {"page"}, printed["breaks"]
    assert printed["summary"] <= PRINTED_PAGE[1]  # the title and the executive summary: page 1
    assert printed["unbroken"] and printed["clipped"] == 0  # a chart is never cut by a page or the page's edge
    assert overflow["scroll"] <= PRINTED_PAGE[0] and overflow["past"] == [], overflow
    assert printed["nav"] == "none"


# ---------------------------------------------------------------------------------------------
# The picture, for a person to look at


def test_a_full_page_screenshot_is_saved(page):
    layout = page.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    width, height = int(layout["width"]), int(layout["height"])
    shot = page.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    png = base64.b64decode(shot["data"])
    folder = Path(os.environ.get(ARTIFACTS_ENV) or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (width, height)
    assert height > WINDOW[1] and len(png) > 50_000  # the whole page, not one screen or a blank one
