"""Outcome charts as inline SVG geometry, computed on the server (no JavaScript, no CDN).

One chart per instrument: the scores over time, the baseline as a line, the MCID band around it
(changes inside the band are not clinically important; the band's edge on the better side is
the responder threshold) and a marker for every procedure. The MCID and the direction (lower or
higher is better) come from the instrument library (`carehub.instruments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.loader import UnknownInstrument
from carehub.instruments.registry import instrument_get
from carehub.observations.models import Observation

WIDTH = 640
HEIGHT = 220
LEFT = 44
RIGHT = 16
TOP = 16
BOTTOM = 36

CHART_INSTRUMENTS: tuple[tuple[str, str], ...] = (
    ("peg", "PEG (pain, enjoyment, general activity)"),
    ("nrs", "Pain intensity (NRS)"),
    ("phq9", "PHQ-9 (depression)"),
    ("gad7", "GAD-7 (anxiety)"),
    ("psfs", "PSFS (patient-specific function)"),
)
PROCEDURE_LABELS = {
    "mbb1": "MBB 1",
    "mbb2": "MBB 2",
    "rfa": "RFA",
    "esi": "ESI",
    "nerve_block": "Nerve block",
    "scs_trial": "SCS trial",
    "it_trial": "IT trial",
}


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: float
    at: datetime


@dataclass(frozen=True)
class Marker:
    x: float
    label: str
    at: datetime


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass
class Chart:
    code: str
    title: str
    points: list[Point] = field(default_factory=list)
    baseline: float | None = None
    baseline_y: float | None = None
    band_top: float | None = None  # y of the band's upper edge (SVG y grows downwards)
    band_height: float | None = None
    responder_text: str = ""
    mcid_source: str = ""
    direction: str = ""
    markers: list[Marker] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM

    @property
    def plot_width(self) -> int:
        return self.plot_right - self.plot_left

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None


def _definition(code: str) -> InstrumentDefinition | None:
    try:
        return instrument_get(code)
    except UnknownInstrument:  # a score entered by staff for an instrument outside the library
        return None


def _range(code: str, values: Sequence[float]) -> tuple[float, float]:
    definition = _definition(code)
    low = definition.scoring.minimum if definition else None
    high = definition.scoring.maximum if definition else None
    low = min(values) if low is None else low
    high = max(values) if high is None else high
    if high == low:
        high = low + 1
    return float(low), float(high)


def build_chart(
    *, code: str, title: str, scores: Sequence[Observation], procedures: Sequence[Observation]
) -> Chart:
    """The chart of one instrument's scores (oldest first) with the procedures as markers."""
    chart = Chart(code=code, title=title)
    rows = sorted(scores, key=lambda o: (o.observed_at, o.pk))
    if not rows:
        return chart
    values = [float(o.value_number or 0) for o in rows]
    low, high = _range(code, values)
    start = rows[0].observed_at
    end = rows[-1].observed_at
    for procedure in procedures:
        start = min(start, procedure.observed_at)
        end = max(end, procedure.observed_at)
    span = max((end - start).total_seconds(), 1.0)
    plot_w = chart.plot_right - chart.plot_left
    plot_h = chart.plot_bottom - chart.plot_top

    def x_of(at: datetime) -> float:
        return chart.plot_left + plot_w * (at - start).total_seconds() / span

    def y_of(value: float) -> float:
        clamped = min(max(value, low), high)
        return chart.plot_bottom - plot_h * (clamped - low) / (high - low)

    chart.points = [
        Point(x=x_of(o.observed_at), y=y_of(v), value=v, at=o.observed_at)
        for o, v in zip(rows, values, strict=True)
    ]
    baseline_rows = [o for o in rows if o.is_baseline] or rows[:1]
    chart.baseline = float(baseline_rows[-1].value_number or 0)
    chart.baseline_y = y_of(chart.baseline)
    definition = _definition(code)
    if definition is not None:
        chart.direction = definition.direction
        mcid = definition.mcid
        if mcid is not None and (mcid.points or mcid.percent):
            delta = mcid.points or abs(chart.baseline) * (mcid.percent or 0) / 100
            upper, lower = y_of(chart.baseline + delta), y_of(chart.baseline - delta)
            chart.band_top, chart.band_height = upper, max(lower - upper, 1.0)
            better = "lower" if definition.direction == "lower_is_better" else "higher"
            amount = f"{mcid.points:g} points" if mcid.points else f"{mcid.percent:g}%"
            chart.responder_text = f"Clinically important change: {amount} ({better} is better)"
            chart.mcid_source = mcid.source
    ticks = 4
    chart.y_ticks = [
        Tick(
            position=y_of(low + (high - low) * i / ticks),
            label=f"{low + (high - low) * i / ticks:g}",
        )
        for i in range(ticks + 1)
    ]
    chart.x_ticks = [
        Tick(position=x_of(at), label=at.strftime("%d %b %y")) for at in _date_ticks(start, end)
    ]
    chart.markers = [
        Marker(
            x=x_of(p.observed_at),
            label=PROCEDURE_LABELS.get(p.code, p.code),
            at=p.observed_at,
        )
        for p in procedures
    ]
    return chart


def _date_ticks(start: datetime, end: datetime) -> list[datetime]:
    if end <= start:
        return [start]
    return [start + (end - start) * i / 3 for i in range(4)]


def charts_for(*, scores: Sequence[Observation], procedures: Sequence[Observation]) -> list[Chart]:
    by_code: dict[str, list[Observation]] = {}
    for score in scores:
        by_code.setdefault(score.code, []).append(score)
    return [
        build_chart(code=code, title=title, scores=by_code.get(code, []), procedures=procedures)
        for code, title in CHART_INSTRUMENTS
    ]
