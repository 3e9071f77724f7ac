"""The strategy map: objectives as boxes in one row per perspective, joined by cause → effect arrows.

Rows follow the config: the first perspective is the top row and the last the bottom one, so the usual
order (financial, customer, internal process, learning & growth) reads bottom-up from learning & growth to
financial, as Kaplan and Norton draw it. Within a row the objectives keep their config order, spread evenly.
An arrow runs from an objective to each objective it `supports:` (the cause to its effect).

Routing keeps every line off the boxes (and the lines are drawn beneath them):
- between neighbouring rows, or neighbours in a row, a straight line between the facing sides;
- further apart in a row, a detour through the gap above the row (below, for the top row);
- across a row or more, a side lane left or right of all the boxes, reached along the gaps between rows or
  straight from the box's side when the box is the outermost of its row; of the two sides, the one whose route
  crosses fewer of the other lines.
Lines meeting a box side spread along it, ordered by where they come from, so arrowheads do not pile up.

`strategy_map` gives plain data (nodes, edges) for the report's text list and a Vega-Lite spec that draws
the same nodes and edges (SVG renderer in the report).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd

from pipelines.views.charts import status_scale
from pipelines.views.formats import status_word
from scoring.config import ScorecardConfig

WIDTH, ROW_HEIGHT = 900, 120  # px; a row is 1 y unit, the objectives span x 0..1
LABEL_SPACE = 0.22  # x units left of the lanes for the perspective names
BOX_WIDTH_SHARE = 0.8  # of the space each objective of the fullest row gets
BOX_HEIGHT = 0.5  # y units
Y_MARGIN = 0.1  # y units above the top row's gap and below the bottom row's, for detours there
LANE_STEP = 0.035  # x units between side lanes, and from the objectives' edge to the first
GAP_STEP = 0.07  # y units between lines running along the same gap
PORT_SPREAD = 0.6  # the share of a box side the lines meeting it spread over
# An arrowhead with its tip at the origin, pointing up, notched; Vega scales a custom shape by sqrt(size) / 2.
ARROW_SHAPE = "M0,0L-0.8,2L0,1.5L0.8,2Z"
ARROW_SIZE = 324  # 18 px from tip to barbs
ARROW_INSET = 13  # px the line stops short of the tip, under the arrowhead
EDGE_COLOUR = "#444"

Point = tuple[float, float]


@dataclass(frozen=True)
class MapNode:
    objective_id: str
    name: str
    perspective_id: str
    perspective: str
    status: str
    status_word: str
    x: float
    y: float


@dataclass(frozen=True)
class MapEdge:
    source: str  # the cause
    target: str  # its effect
    text: str  # "Skilled engineers → Ship small changes often"


@dataclass(frozen=True)
class StrategyMap:
    nodes: list[MapNode]
    edges: list[MapEdge]
    spec: dict
    routes: list[list[Point]] = field(default_factory=list)  # per edge, cause to effect, in the spec's units


def strategy_map(scorecard: ScorecardConfig, objective_status: dict[str, str]) -> StrategyMap:
    """The map of `scorecard` with each objective's status in the period (missing: no_data)."""
    nodes = _layout(scorecard, objective_status)
    by_id = {node.objective_id: node for node in nodes}
    edges = [MapEdge(objective.id, target, f"{objective.name} → {by_id[target].name}")
             for _, objective in scorecard.objectives() for target in objective.supports]  # fmt: skip
    geometry = _Geometry(nodes, len(scorecard.perspectives))
    routes = _Router(geometry, edges).routes()
    return StrategyMap(nodes, edges, _spec(geometry, edges, routes), routes)


def _layout(scorecard: ScorecardConfig, objective_status: dict[str, str]) -> list[MapNode]:
    rows = len(scorecard.perspectives)
    nodes = []
    for row, perspective in enumerate(scorecard.perspectives):
        count = len(perspective.objectives)
        for column, objective in enumerate(perspective.objectives):
            status = objective_status.get(objective.id) or "no_data"
            nodes.append(MapNode(objective.id, objective.name, perspective.id, perspective.name, status,
                                 status_word(status), (column + 0.5) / count, float(rows - 1 - row)))  # fmt: skip
    return nodes


# --- geometry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    half_width: float
    half_height: float
    first: bool  # the leftmost of its row
    last: bool  # the rightmost of its row

    def side_centre(self, side: str) -> Point:
        return {"top": (self.x, self.y + self.half_height), "bottom": (self.x, self.y - self.half_height),
                "left": (self.x - self.half_width, self.y), "right": (self.x + self.half_width, self.y)}[side]

    def outermost(self, side: str) -> bool:
        return self.first if side == "left" else self.last


class _Geometry:
    """Where the boxes, gaps and lanes are, in the chart's units (x: objectives 0..1; y: one row per unit)."""

    def __init__(self, nodes: list[MapNode], rows: int):
        self.nodes, self.rows = nodes, rows
        fullest = max(sum(1 for node in nodes if node.y == y) for y in {node.y for node in nodes})
        self.half_width, self.half_height = BOX_WIDTH_SHARE / fullest / 2, BOX_HEIGHT / 2
        row_xs: dict[float, list[float]] = defaultdict(list)
        for node in nodes:
            row_xs[node.y].append(node.x)
        self.boxes = {node.objective_id: _Box(node.x, node.y, self.half_width, self.half_height,
                                              node.x == min(row_xs[node.y]), node.x == max(row_xs[node.y]))
                      for node in nodes}  # fmt: skip
        self.lanes = {"left": 0, "right": 0}  # set by the router: side lanes in use
        self.y_domain = (-0.5 - Y_MARGIN, rows - 0.5 + Y_MARGIN)

    def gap_y(self, gap: int) -> float:
        """The middle of the gap between row `gap` and the row above it (-1: below the bottom row)."""
        return gap + 0.5

    def lane_x(self, side: str, index: int) -> float:
        return -LANE_STEP * (index + 1) if side == "left" else 1 + LANE_STEP * (index + 1)

    @property
    def x_domain(self) -> tuple[float, float]:
        return (-LABEL_SPACE - LANE_STEP * (self.lanes["left"] + 1), 1 + LANE_STEP * (self.lanes["right"] + 1))

    @property
    def height(self) -> float:
        return ROW_HEIGHT * (self.y_domain[1] - self.y_domain[0])

    def to_screen(self, point: Point) -> Point:
        """px right and down from the plot's top left corner."""
        (x_low, x_high), (y_low, y_high) = self.x_domain, self.y_domain
        return ((point[0] - x_low) / (x_high - x_low) * WIDTH, (y_high - point[1]) / (y_high - y_low) * self.height)


# --- routing -----------------------------------------------------------------------------------


@dataclass
class _Plan:
    """How one edge runs: `kind` straight | detour | lane; the box sides it leaves and enters by; for a lane its
    side and index; the gaps its horizontal runs follow (None: straight from the box side)."""

    kind: str
    exit_side: str
    entry_side: str
    lane: tuple[str, int] | None = None
    exit_gap: int | None = None
    entry_gap: int | None = None


class _Router:
    def __init__(self, geometry: _Geometry, edges: list[MapEdge]):
        self.geometry, self.edges = geometry, edges
        self.boxes = geometry.boxes

    def routes(self) -> list[list[Point]]:
        plans = [self._plan(edge) for edge in self.edges]
        lanes_used = {"left": 0, "right": 0}
        # The shorter a lane line's climb, the nearer the boxes its lane: the longer ones pass outside it.
        for index in sorted((i for i, plan in enumerate(plans) if plan.kind == "lane"), key=self._rows_apart):
            plans[index] = self._choose_lane_side(index, plans, lanes_used)
            lanes_used[plans[index].lane[0]] += 1
        self.geometry.lanes.update(lanes_used)
        ports = self._ports(plans)
        gap_ys = self._gap_ys(plans)
        return [self._points(index, plan, ports[index], gap_ys) for index, plan in enumerate(plans)]

    def _rows_apart(self, index: int) -> float:
        edge = self.edges[index]
        return abs(self.boxes[edge.target].y - self.boxes[edge.source].y)

    def _plan(self, edge: MapEdge) -> _Plan:
        cause, effect = self.boxes[edge.source], self.boxes[edge.target]
        rows_apart = effect.y - cause.y
        if rows_apart == 0:
            between = [b for b in self.boxes.values() if b.y == cause.y and min(cause.x, effect.x) < b.x < max(
                cause.x, effect.x)]  # fmt: skip
            if not between:
                facing = "right" if effect.x > cause.x else "left"
                return _Plan("straight", facing, _opposite(facing))
            top_row = cause.y == self.geometry.rows - 1
            side = "bottom" if top_row else "top"
            gap = int(cause.y) - 1 if top_row else int(cause.y)
            return _Plan("detour", side, side, exit_gap=gap)
        up = rows_apart > 0
        if abs(rows_apart) == 1:
            return _Plan("straight", "top" if up else "bottom", "bottom" if up else "top")
        return _Plan("lane", "", "")  # its side is chosen once the straight lines are known

    def _lane_plan(self, edge: MapEdge, side: str, index: int) -> _Plan:
        cause, effect = self.boxes[edge.source], self.boxes[edge.target]
        up = effect.y > cause.y
        toward, away = ("top", "bottom") if up else ("bottom", "top")
        plan = _Plan("lane", side, side, (side, index))
        if not cause.outermost(side):
            plan.exit_side, plan.exit_gap = toward, int(cause.y) if up else int(cause.y) - 1
        if not effect.outermost(side):
            plan.entry_side, plan.entry_gap = away, int(effect.y) - 1 if up else int(effect.y)
        return plan

    def _choose_lane_side(self, index: int, plans: list[_Plan], lanes_used: dict[str, int]) -> _Plan:
        """The side whose route, drawn with centred ports, crosses fewer of the lines planned so far."""
        edge = self.edges[index]
        others = [self._rough_points(other, plan) for other, plan in enumerate(plans)
                  if other != index and (plan.kind != "lane" or plan.lane is not None)]  # fmt: skip
        candidates = []
        for side in ("left", "right"):
            plan = self._lane_plan(edge, side, lanes_used[side])
            crossings = sum(_crossings(self._rough_points(index, plan), route) for route in others)
            nearer = (self.boxes[edge.source].x + self.boxes[edge.target].x < 1) == (side == "left")
            candidates.append((crossings, not nearer, plan))
        return min(candidates, key=lambda candidate: candidate[:2])[2]

    def _rough_points(self, index: int, plan: _Plan) -> list[Point]:
        edge = self.edges[index]
        ports = (self.boxes[edge.source].side_centre(plan.exit_side),
                 self.boxes[edge.target].side_centre(plan.entry_side))  # fmt: skip
        return self._points(index, plan, ports, {})

    def _ports(self, plans: list[_Plan]) -> list[tuple[Point, Point]]:
        """Each edge's two ends: spread along the box side, ordered by where the line goes next."""
        meeting: dict[tuple[str, str], list[tuple[float, int, int]]] = defaultdict(list)
        for index, (edge, plan) in enumerate(zip(self.edges, plans, strict=True)):
            for end, objective, side, other in ((0, edge.source, plan.exit_side, edge.target),
                                                (1, edge.target, plan.entry_side, edge.source)):
                meeting[objective, side].append((self._toward(plan, objective, other, side), index, end))
        ends: list[list[Point]] = [[(0.0, 0.0), (0.0, 0.0)] for _ in self.edges]
        for (objective, side), lines in meeting.items():
            box = self.boxes[objective]
            centre = box.side_centre(side)
            along = box.half_width if side in ("top", "bottom") else box.half_height
            for position, (_, index, end) in enumerate(sorted(lines)):
                shift = ((position + 1) / (len(lines) + 1) - 0.5) * 2 * along * PORT_SPREAD
                ends[index][end] = (centre[0] + shift, centre[1]) if side in ("top", "bottom") else (
                    centre[0], centre[1] + shift)  # fmt: skip
        return [(start, end) for start, end in ends]

    def _toward(self, plan: _Plan, objective: str, other: str, side: str) -> tuple[float, float]:
        """The order of the lines meeting a box side (bottom to top, left to right): by where they head.

        On top and bottom, by the x they head for. On a side, a lane line runs out to its lane and then
        along it: those that turn down sit below those that turn up, and the further out a line's lane, the
        nearer the turn it leaves (lower for up, higher for down), so no line crosses its neighbours."""
        box, far = self.boxes[objective], self.boxes[other]
        if side in ("top", "bottom"):
            return (self.geometry.lane_x(*plan.lane) if plan.kind == "lane" else far.x, 0.0)
        if plan.kind != "lane":
            return (0.5, far.y)
        outwards = plan.lane[1]
        return (1.0, -outwards) if far.y > box.y else (0.0, outwards)

    def _gap_ys(self, plans: list[_Plan]) -> dict[tuple[int, int], float]:
        """(edge, gap) → the y of that edge's run along the gap. Runs sharing a gap sit apart (GAP_STEP, closer
        when many, always clear of the boxes); those joining a box above the gap run above those joining a box
        below it, so the short drops from the two rows never overlap."""
        runs: dict[int, list[tuple[bool, int]]] = defaultdict(list)
        for index, plan in enumerate(plans):
            edge = self.edges[index]
            for gap, joins in ((plan.exit_gap, edge.source), (plan.entry_gap, edge.target)):
                if gap is not None:
                    runs[gap].append((self.boxes[joins].y > gap, index))
        gap_ys = {}
        room = 1 - BOX_HEIGHT - 2 * GAP_STEP  # the gap's height, less a margin to the boxes at either end
        for gap, members in runs.items():
            step = min(GAP_STEP, room / max(len(members) - 1, 1))
            for position, (_, index) in enumerate(sorted(members)):  # bottom to top: lower row's runs first
                gap_ys[index, gap] = self.geometry.gap_y(gap) + (position - (len(members) - 1) / 2) * step
        return gap_ys

    def _points(self, index: int, plan: _Plan, ports: tuple[Point, Point], gap_ys: dict) -> list[Point]:
        start, end = ports
        if plan.kind == "straight":
            return [start, end]
        if plan.kind == "detour":
            y = gap_ys.get((index, plan.exit_gap), self.geometry.gap_y(plan.exit_gap))
            return [start, (start[0], y), (end[0], y), end]
        lane = self.geometry.lane_x(*plan.lane)
        points = [start]
        if plan.exit_gap is None:
            points.append((lane, start[1]))
        else:
            y = gap_ys.get((index, plan.exit_gap), self.geometry.gap_y(plan.exit_gap))
            points += [(start[0], y), (lane, y)]
        if plan.entry_gap is None:
            points.append((lane, end[1]))
        else:
            y = gap_ys.get((index, plan.entry_gap), self.geometry.gap_y(plan.entry_gap))
            points += [(lane, y), (end[0], y)]
        return [*points, end]


def _opposite(side: str) -> str:
    return {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[side]


def _crossings(route: list[Point], other: list[Point]) -> int:
    """How often two polylines cross (touching at an end is not crossing)."""
    return sum(_segments_cross(a, b, c, d) for a, b in zip(route, route[1:], strict=False)
               for c, d in zip(other, other[1:], strict=False))  # fmt: skip


def _segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    def turn(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    return turn(a, b, c) * turn(a, b, d) < 0 and turn(c, d, a) * turn(c, d, b) < 0


# --- the spec ----------------------------------------------------------------------------------


def _spec(geometry: _Geometry, edges: list[MapEdge], routes: list[list[Point]]) -> dict:
    half_width, half_height = geometry.half_width, geometry.half_height
    boxes = pd.DataFrame([{**node.__dict__, "label": [node.name, node.status_word]} for node in geometry.nodes])
    boxes = boxes.assign(x1=boxes["x"] - half_width, x2=boxes["x"] + half_width,
                         y1=boxes["y"] - half_height, y2=boxes["y"] + half_height)  # fmt: skip
    x_low = geometry.x_domain[0]
    rows_frame = boxes.drop_duplicates("perspective_id")[["perspective", "y"]].assign(x=x_low + LABEL_SPACE / 2)
    x_scale = alt.Scale(domain=list(geometry.x_domain), nice=False, zero=False)
    y_scale = alt.Scale(domain=list(geometry.y_domain), nice=False, zero=False)
    hidden = alt.Axis(title=None, labels=False, ticks=False, domain=False, grid=False)

    def x(column: str) -> alt.X:
        return alt.X(f"{column}:Q", scale=x_scale, axis=hidden)

    def y(column: str) -> alt.Y:
        return alt.Y(f"{column}:Q", scale=y_scale, axis=hidden)

    tooltip = [alt.Tooltip("name:N", title="objective"), alt.Tooltip("perspective:N"),
               alt.Tooltip("status_word:N", title="status")]
    edge_tooltip = [alt.Tooltip("edge:N", title="cause → effect")]
    layers = [
        alt.Chart(rows_frame).mark_text(fontWeight="bold", fontSize=13, align="center").encode(
            x=x("x"), y=y("y"), text="perspective:N"),
        # The lines first: the boxes drawn after them cover anything that would touch them.
        alt.Chart(line_rows(geometry, edges, routes)).mark_line(
            color=EDGE_COLOUR, strokeWidth=2, strokeJoin="round", clip=False).encode(
            x=x("x"), y=y("y"), detail="edge:N", order="step:Q", tooltip=edge_tooltip),
        alt.Chart(boxes).mark_rect(cornerRadius=6, fill="white").encode(  # the boxes are opaque
            x=x("x1"), x2="x2:Q", y=y("y1"), y2="y2:Q"),
        alt.Chart(boxes).mark_rect(cornerRadius=6, stroke="#333", strokeWidth=1, fillOpacity=0.25).encode(
            x=x("x1"), x2="x2:Q", y=y("y1"), y2="y2:Q",
            fill=alt.Fill("status:N", scale=status_scale(), legend=None), tooltip=tooltip),
        alt.Chart(boxes).mark_text(fontSize=12, lineHeight=16, color="#111").encode(
            x=x("x"), y=y("y"), text="label", tooltip=tooltip),
        alt.Chart(arrow_rows(geometry, edges, routes)).mark_point(
            shape=ARROW_SHAPE, size=ARROW_SIZE, filled=True, color=EDGE_COLOUR, opacity=1, strokeWidth=0).encode(
            x=x("x"), y=y("y"), angle=alt.Angle("angle:Q", scale=None), tooltip=edge_tooltip),
    ]
    chart = alt.layer(*layers).properties(width=WIDTH, height=geometry.height)
    return chart.configure_view(stroke=None).to_dict(validate=False)


def line_rows(geometry: _Geometry, edges: list[MapEdge], routes: list[list[Point]]) -> pd.DataFrame:
    """Each route's points in order (edge, step, x, y), the last pulled back ARROW_INSET px under its arrowhead."""
    rows = []
    for edge, route in zip(edges, routes, strict=True):
        points = [*route[:-1], _inset(geometry, route[-2], route[-1])]
        rows += [{"edge": edge.text, "step": step, "x": px, "y": py} for step, (px, py) in enumerate(points)]
    return pd.DataFrame(rows, columns=["edge", "step", "x", "y"])


def arrow_rows(geometry: _Geometry, edges: list[MapEdge], routes: list[list[Point]]) -> pd.DataFrame:
    """One arrowhead per edge, its tip on the effect's box, turned (screen degrees clockwise from up) along the
    route's last segment."""
    tips = np.array([route[-1] for route in routes]).reshape(-1, 2)
    before = np.array([route[-2] for route in routes]).reshape(-1, 2)
    screen_tips = np.array([geometry.to_screen(tuple(point)) for point in tips]).reshape(-1, 2)
    screen_before = np.array([geometry.to_screen(tuple(point)) for point in before]).reshape(-1, 2)
    delta = screen_tips - screen_before
    return pd.DataFrame({"edge": [edge.text for edge in edges], "x": tips[:, 0], "y": tips[:, 1],
                         "angle": np.degrees(np.arctan2(delta[:, 0], -delta[:, 1]))})  # fmt: skip


def _inset(geometry: _Geometry, before: Point, tip: Point) -> Point:
    (bx, by), (tx, ty) = geometry.to_screen(before), geometry.to_screen(tip)
    length = float(np.hypot(tx - bx, ty - by))
    keep = max(length - ARROW_INSET, 0.0) / length if length else 0.0
    x_low, x_high = geometry.x_domain
    y_low, y_high = geometry.y_domain
    sx, sy = bx + (tx - bx) * keep, by + (ty - by) * keep
    return (x_low + sx / WIDTH * (x_high - x_low), y_high - sy / geometry.height * (y_high - y_low))
