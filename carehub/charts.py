"""Score charts over time, drawn on the server as inline SVG by pygal: the one chart module of
the staff pages and the patient portal (ADR 0019).

pygal chooses the scale's ticks (round values: 0, 2, 4 … or 0, 5, 10 …) and the date labels,
and leaves room for every label, so none is cut. Its output is then made fit for our pages:

- the strict Content Security Policy allows no inline script or style, so pygal's `<script>`
  (tooltip configuration), `<style>` and tooltip layer are removed and every colour, width and
  font is set as an SVG presentation attribute instead (which the policy allows), so the chart
  looks the same in any stylesheet's page;
- the chart is one image for assistive technology (`role="img"`, named by the caption of the
  page that shows it); the numbers are in a table beside it on both pages;
- dates are the local dates of the zone the page shows (the clinic's for staff, the patient's
  own in the portal), the same as the dates in the chart's caption and table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import pygal
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

WIDTH = 640
HEIGHT = 320
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
TEXT = "#1b1b1b"
MUTED = "#4a525c"  # 7.8:1 on white
GRID = "#d9dde3"
SCORE = "#0b5cad"
BASELINE = "#1b1b1b"
THRESHOLD = "#1d6b2f"
MARKER = "#4b2a8a"


@dataclass(frozen=True)
class Line:
    """A level drawn across the chart (the baseline, a responder threshold)."""

    value: float
    label: str
    kind: str  # "baseline" or "threshold": its look and its class


@dataclass(frozen=True)
class Marker:
    """Something that happened on a day (a procedure), marked at the top of the chart."""

    at: datetime
    label: str


# How each series looks: stroke colour, width, dash pattern, dot radius (0: no dots).
LOOKS: dict[str, tuple[str, str, str, float]] = {
    "scores": (SCORE, "3", "", 4.5),
    "baseline": (BASELINE, "2", "7 5", 0),
    "threshold": (THRESHOLD, "2", "2 4", 0),
    "markers": (MARKER, "0", "", 5),
}


def _day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def _day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def _date_labels(first: date, last: date, most: int = 5) -> list[date]:
    """The days labelled on the time axis: the first and the last day shown (the same local
    days as the chart's caption and table) and whole days evenly between them."""
    span = (last - first).days
    if span == 0:
        return [first]
    count = min(most, span + 1)
    days = {first + (last - first) * i // (count - 1) for i in range(count)}
    return sorted(days)


def score_chart(
    *,
    points: Sequence[tuple[datetime, float]],
    low: float,
    high: float,
    zone: ZoneInfo,
    series_label: str = "Score",
    lines: Sequence[Line] = (),
    markers: Sequence[Marker] = (),
    labelledby: str = "",
    describedby: str = "",
    css_class: str = "chart-svg",
) -> SafeString:
    """One instrument's scores over time on its whole scale (`low` to `high`), oldest first,
    with optional level lines and day markers; inline SVG markup for a template. Empty markup
    without a score."""
    if not points:
        return mark_safe("")
    days = [_day(at, zone) for at, _ in points]
    first, last = min(days), max(days)
    for marker in markers:
        first, last = min(first, _day(marker.at, zone)), max(last, _day(marker.at, zone))
    chart = pygal.DateLine(
        width=WIDTH,
        height=HEIGHT,
        explicit_size=False,
        js=[],
        disable_xml_declaration=True,
        no_prefix=True,
        range=(low, high),
        include_x_axis=False,
        show_x_guides=False,
        show_legend=True,
        legend_at_bottom=True,
        legend_at_bottom_columns=1,  # one entry a line: no entry runs past the edge
        truncate_label=-1,
        x_labels=_date_labels(first, last),
        max_scale=7,
        min_scale=4,
        margin_right=40,  # half a date label: the last one is centred on the last day
        truncate_legend=-1,
        x_value_formatter=_day_label,
        value_formatter=lambda value: f"{value:g}",
        print_labels=True,
        margin=12,
        style=Style(
            font_family=FONT,
            label_font_size=13,
            major_label_font_size=13,
            legend_font_size=13,
            value_label_font_size=13,
        ),
    )
    kinds: list[str] = []
    chart.add(series_label, list(zip(days, (float(v) for _, v in points), strict=True)))
    kinds.append("scores")
    for line in lines:
        chart.add(line.label, [(first, line.value), (last, line.value)], show_dots=False)
        kinds.append(line.kind)
    if markers:
        chart.add(
            "Procedures",
            [
                {"value": (_day(m.at, zone), high), "label": m.label}
                for m in sorted(markers, key=lambda m: m.at)
            ],
            stroke=False,
        )
        kinds.append("markers")
    root = chart.render_tree()
    _fit_for_our_pages(root, kinds, css_class, labelledby, describedby)
    return mark_safe(ET.tostring(root, encoding="unicode"))  # noqa: S308 (our own tree)


def _fit_for_our_pages(
    root: ET.Element, kinds: list[str], css_class: str, labelledby: str, describedby: str
) -> None:
    """pygal's tree without script, style or tooltips; its looks as presentation attributes;
    one image for assistive technology."""
    root.attrib.pop("id", None)
    root.set("class", css_class)
    root.set("role", "img")
    root.set("focusable", "false")
    root.set("font-family", FONT)
    if labelledby:
        root.set("aria-labelledby", labelledby)
    if describedby:
        root.set("aria-describedby", describedby)
    for parent in root.iter():
        for child in list(parent):
            cls = child.get("class", "")
            if (
                child.tag in ("script", "style", "title")
                or "tooltip-overlay" in cls
                or (child.tag == "desc" and cls.strip() != "value")
            ):
                parent.remove(child)
    for element in root.iter():
        _paint(element, kinds)
    # Text placement pygal's stylesheet would give: the time axis' dates centred on their day,
    # the scale's values ending left of the plot, a marker's label centred over it.
    for group in root.iter("g"):
        classes = group.get("class", "").split()
        anchor = (
            "middle"
            if ("axis" in classes and "x" in classes) or "text-overlay" in classes
            else "end"
            if "axis" in classes and "y" in classes
            else ""
        )
        if anchor:
            for text in group.iter("text"):
                text.set("text-anchor", anchor)


def _paint(element: ET.Element, kinds: list[str]) -> None:
    cls = element.get("class", "").split()
    tag = element.tag
    if tag == "rect" and "background" in cls:
        element.set("fill", "#ffffff")
    elif tag == "path" and "line" in cls and "guide" in cls:
        element.set("stroke", GRID)
        element.set("fill", "none")
    elif tag == "path" and "axis" in cls:
        element.set("stroke", MUTED)
        element.set("fill", "none")
    elif tag == "path" and "line" in cls:
        element.set("fill", "none")
    elif tag == "text":
        element.set("fill", TEXT if "label" in cls else MUTED)
        element.set("font-size", "13")
    if "series" in cls or ("reactive" in cls and tag == "rect"):
        _paint_series(element, cls, kinds)


def _paint_series(element: ET.Element, cls: list[str], kinds: list[str]) -> None:
    """A series' group (its line, its dots) or its legend box, by the series' kind."""
    index = next((int(c.split("-")[1]) for c in cls if c.startswith("color-")), None)
    if index is None or index >= len(kinds):
        return
    kind = kinds[index]
    colour, width, dash, radius = LOOKS[kind]
    if element.tag == "rect":  # the legend's box
        element.set("fill", colour)
        return
    element.set("class", f"{' '.join(cls)} {kind}")
    for item in element.iter():
        if item.tag == "path":
            item.set("stroke", colour)
            item.set("stroke-width", width)
            item.set("fill", "none")
            if dash:
                item.set("stroke-dasharray", dash)
        elif item.tag == "circle":
            item.set("fill", colour)
            item.set("r", str(radius))
        elif item.tag == "text":
            item.set("fill", colour)
            item.set("font-weight", "700")
