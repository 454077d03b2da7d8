"""A simple score chart rendered on the server as inline SVG (no scripts, no inline styles: the
colours are SVG presentation attributes, which the CSP allows).

The template draws what `score_chart` computes: the line through the scores, a dot per score,
the scale's ends and a few dates along the bottom. The data are also given as a table on the
page, for screen readers and for anyone who prefers numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

WIDTH = 640
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 16, 44


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    polyline: str
    dots: list[Dot]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float

    @property
    def plot_width(self) -> float:
        return self.plot_right - self.plot_left

    @property
    def plot_height(self) -> float:
        return self.plot_bottom - self.plot_top


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _label(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def score_chart(
    *, points: list[tuple[datetime, float]], low: float, high: float, zone: ZoneInfo, title: str
) -> Chart | None:
    """Scores over time on the instrument's whole scale; None without at least one score."""
    if not points:
        return None
    start, end = points[0][0], points[-1][0]
    span = (end - start).total_seconds() or 1.0
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    scale = (high - low) or 1.0

    def x_of(moment: datetime) -> float:
        if len(points) == 1:
            return LEFT + width / 2
        return LEFT + (moment - start).total_seconds() / span * width

    def y_of(value: float) -> float:
        return TOP + (high - value) / scale * height

    dots = [
        Dot(x_of(at), y_of(value), f"{at.astimezone(zone):%d %b}: {_label(value)}")
        for at, value in points
    ]
    polyline = " ".join(f"{_fmt(d.x)},{_fmt(d.y)}" for d in dots)
    middle = low + (high - low) / 2
    if float(low).is_integer() and float(high).is_integer():
        middle = float(round(middle))
    y_ticks = [Tick(LEFT - 8, y_of(v) + 7, _label(v), "end") for v in (high, middle, low)]
    x_ticks = []
    if len(points) == 1:
        x_ticks.append(Tick(dots[0].x, HEIGHT - 12, f"{start.astimezone(zone):%d %b}"))
    else:
        for share, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
            moment = start + (end - start) * share
            label = f"{moment.astimezone(zone):%d %b}"
            x_ticks.append(Tick(x_of(moment), HEIGHT - 12, label, anchor))
    return Chart(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        polyline=polyline,
        dots=dots,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        plot_top=TOP,
        plot_bottom=HEIGHT - BOTTOM,
    )
