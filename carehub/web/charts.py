"""Outcome charts of the patient page, drawn by the one chart module (`carehub.charts`).

One chart per instrument: the scores over time, the baseline as a line, the responder threshold
(the baseline's MCID on the better side: a change smaller than that is not clinically
important) and a marker for every procedure. The MCID and the direction (lower or higher is
better) come from the instrument library (`carehub.instruments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from carehub.charts import Line, Marker, score_chart
from carehub.instruments.catalogue import Entry, Names, entry, in_words, responder_threshold
from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.loader import UnknownInstrument
from carehub.instruments.registry import instrument_get
from carehub.observations.models import Observation

# The instruments charted on the patient page, in this order, titled as the library titles them.
CHART_INSTRUMENTS: tuple[str, ...] = ("peg", "nrs", "phq9", "gad7", "psfs")
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
    value: float
    at: datetime


@dataclass
class Chart:
    code: str
    title: str
    points: list[Point] = field(default_factory=list)
    baseline: float | None = None
    threshold: float | None = None  # the responder threshold: baseline ± MCID, on the better side
    responder_text: str = ""
    mcid_source: str = ""
    direction: str = ""
    markers: list[Marker] = field(default_factory=list)
    svg: str = ""  # inline SVG from carehub.charts

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None


def _definition(code: str) -> InstrumentDefinition | None:
    try:
        return instrument_get(code)
    except UnknownInstrument:  # a score entered by staff for an instrument outside the library
        return None


def _range(definition: InstrumentDefinition | None, values: Sequence[float]) -> tuple[float, float]:
    low = definition.scoring.minimum if definition else None
    high = definition.scoring.maximum if definition else None
    low = min(values) if low is None else low
    high = max(values) if high is None else high
    if high == low:
        high = low + 1
    return float(low), float(high)


def build_chart(
    *,
    code: str,
    title: str,
    scores: Sequence[Observation],
    procedures: Sequence[Observation],
    zone: ZoneInfo,
) -> Chart:
    """The chart of one instrument's scores (oldest first) with the baseline, the responder
    threshold (the baseline's MCID on the better side) and the procedures as markers, dated in
    `zone` (the page's)."""
    chart = Chart(code=code, title=title)
    rows = sorted(scores, key=lambda o: (o.observed_at, o.pk))
    if not rows:
        return chart
    chart.points = [Point(value=float(o.value_number or 0), at=o.observed_at) for o in rows]
    baseline_rows = [o for o in rows if o.is_baseline] or rows[:1]
    chart.baseline = float(baseline_rows[-1].value_number or 0)
    definition = _definition(code)
    lines = [Line(chart.baseline, f"Baseline {chart.baseline:g}", "baseline")]
    if definition is not None:
        chart.direction = definition.direction
        mcid = definition.mcid
        threshold = responder_threshold(Entry(definition, Names()), chart.baseline)
        if mcid is not None and threshold is not None:
            chart.threshold = threshold
            better = "higher" if definition.direction == "higher_is_better" else "lower"
            amount = f"{mcid.points:g} points" if mcid.points else f"{mcid.percent:g}%"
            chart.responder_text = f"Clinically important change: {amount} ({better} is better)"
            chart.mcid_source = in_words(mcid.source)
            lines.append(
                Line(
                    round(chart.threshold, 2),
                    f"Clinically important change ({amount})",
                    "threshold",
                )
            )
    chart.markers = [
        Marker(at=p.observed_at, label=PROCEDURE_LABELS.get(p.code, p.code)) for p in procedures
    ]
    low, high = _range(definition, [p.value for p in chart.points])
    chart.svg = score_chart(
        points=[(p.at, p.value) for p in chart.points],
        low=low,
        high=high,
        zone=zone,
        lines=lines,
        markers=chart.markers,
        labelledby=f"chart-{code}-title",
    )
    return chart


def charts_for(
    *, scores: Sequence[Observation], procedures: Sequence[Observation], zone: ZoneInfo
) -> list[Chart]:
    by_code: dict[str, list[Observation]] = {}
    for score in scores:
        by_code.setdefault(score.code, []).append(score)
    return [
        build_chart(
            code=code,
            title=entry(code).title,
            scores=by_code.get(code, []),
            procedures=procedures,
            zone=zone,
        )
        for code in CHART_INSTRUMENTS
    ]
