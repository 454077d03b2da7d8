"""The simulation report as one self-contained HTML page: SVG charts drawn by pygal inline, no
script, stylesheet or font fetched from anywhere (it is opened from disk or attached to a
review)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any

import pygal
from pygal.style import Style

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#7b8794",
    font_family="system-ui, -apple-system, 'Segoe UI', sans-serif",
    colors=("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"),
    title_font_size=16,
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=11,
)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2933;margin:0;
background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #d9e2ec;padding-bottom:4px}
.meta{color:#52606d;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin:16px 0}
.card{background:white;border:1px solid #d9e2ec;border-radius:8px;padding:12px}
.card b{display:block;font-size:22px} .card span{color:#52606d;font-size:13px}
.chart{background:white;border:1px solid #d9e2ec;border-radius:8px;padding:8px;margin:12px 0}
.chart svg{width:100%;height:auto}
table{border-collapse:collapse;width:100%;background:white;font-size:13px;margin:8px 0}
th,td{border:1px solid #d9e2ec;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8} td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b91c1c;font-weight:600} .ok{color:#15803d;font-weight:600}
.two{display:grid;grid-template-columns:1fr 1fr;gap:12px}
details summary{cursor:pointer;color:#2563eb}
"""


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "style": STYLE,
        "js": [],  # self-contained: no tooltip script from a CDN
        "disable_xml_declaration": True,
        "width": 1100,
        "height": 380,
        "legend_at_bottom": True,
        "show_minor_x_labels": False,
        "truncate_legend": 40,
        "truncate_label": -1,
        **extra,
    }


# pygal writes its tooltip script's configuration into every SVG; without the script (`js=[]`)
# it is dead weight, and a report should run no script at all.
_CONFIG_SCRIPT = re.compile(r"<script type=\"text/javascript\">window\.pygal.*?</script>", re.S)


def _svg(chart: Any) -> str:
    svg = _CONFIG_SCRIPT.sub("", chart.render(is_unicode=True))
    return f'<div class="chart">{svg}</div>'


def _weeks_axis(chart: Any, weeks: int) -> None:
    chart.x_labels = [str(w) for w in range(weeks)]
    chart.x_labels_major = [str(w) for w in range(0, weeks, 4)]
    chart.x_title = "week since the cohort's start"


def _weekly_svg(chart: Any, title: str, weeks: int, series: Mapping[str, list[Any]]) -> str:
    """`chart` titled, over the weeks axis, one line (or bar) per entry of `series`."""
    chart.title = title
    _weeks_axis(chart, weeks)
    for name, values in series.items():
        chart.add(name, values)
    return _svg(chart)


def _card(value: Any, label: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<div class="card"><b{cls}>{escape(str(value))}</b><span>{escape(label)}</span></div>'


def render(report: dict[str, Any], comparison: dict[str, Any] | None = None) -> str:
    cov = report["coverage"]
    weeks = report["weeks"]
    parts: list[str] = []
    title = f"Simulation: {report['pathway_title']} ({report['pathway']})"
    parts.append(f"<h1>{escape(title)}</h1>")
    parts.append(
        f'<p class="meta">Cohort <b>{escape(report["cohort"])}</b>: {report["patients"]} patients '
        f"for {report['days']} days from {escape(report['start'][:10])}, seed {report['seed']}. "
        "Real engine and check-in schedules on a fake clock.</p>"
    )
    all_states = cov["states_reached"] == cov["states_total"]
    all_transitions = cov["transitions_taken"] == cov["transitions_total"]
    messages = report["messages"]
    parts.append('<div class="cards">')
    parts.append(
        _card(
            f"{cov['states_reached']}/{cov['states_total']}",
            "states reached",
            "ok" if all_states else "bad",
        )
    )
    parts.append(
        _card(
            f"{cov['transitions_taken']}/{cov['transitions_total']}",
            "transitions taken",
            "ok" if all_transitions else "bad",
        )
    )
    parts.append(_card(report["engine"]["decisions"], "engine decisions"))
    parts.append(_card(sum(report["proposals"]["totals"].values()), "escalations proposed"))
    parts.append(_card(sum(report["red_flags"]["answers"].values()), "red-flag answers"))
    parts.append(
        _card(report["stuck"]["count"], f"stuck ≥ {report['stuck']['after_weeks']:g} weeks")
    )
    parts.append(
        _card(
            messages["max_sent_in_a_patient_day"],
            f"most messages to a patient in a day (budget {messages['daily_budget']})",
        )
    )
    parts.append("</div>")

    if comparison is not None:
        parts.append(_comparison(comparison))

    # --- coverage -----------------------------------------------------------------------------
    parts.append("<h2>Coverage</h2>")
    if cov["unreached_states"] or cov["untaken_transitions"]:
        parts.append("<p class='bad'>Not reached by this cohort:</p><ul>")
        parts += [f"<li>state {escape(s)}</li>" for s in cov["unreached_states"]]
        parts += [f"<li>transition {escape(t)}</li>" for t in cov["untaken_transitions"]]
        parts.append("</ul>")
    else:
        parts.append("<p class='ok'>Every state and every transition was reached.</p>")
    chart = pygal.HorizontalBar(
        **_config(height=max(380, 18 * cov["states_total"]), show_legend=False)
    )
    chart.title = "Patients who reached each state"
    states = list(reversed(cov["states"]))
    chart.x_labels = [f"{s['track']}.{s['state']}" for s in states]
    chart.add("patients", [s["patients"] for s in states])
    parts.append(_svg(chart))
    rows = "".join(
        f"<tr><td>{escape(t['id'])}</td><td>{escape(', '.join(t['from']))}</td>"
        f"<td>{escape(t['to'] or '(stays)')}</td><td>{escape(t['event'])}</td>"
        f"<td>{'approval' if t['approval'] else ''}</td>"
        f"<td class='n {'bad' if not t['patients'] else ''}'>{t['patients']}</td>"
        f"<td class='n'>{t['times']}</td></tr>"
        for t in cov["transitions"]
    )
    parts.append(
        "<details><summary>Every transition</summary><table><tr><th>id</th><th>from</th>"
        "<th>to</th><th>event</th><th></th><th>patients</th><th>times</th></tr>"
        f"{rows}</table></details>"
    )

    # --- time to stage ------------------------------------------------------------------------
    parts.append("<h2>Time to each stage</h2>")
    chart = pygal.Box(**_config(box_mode="tukey", legend_at_bottom_columns=3))
    chart.title = "Days from enrolment to first reaching each stage"
    stage_rows = []
    for stage, entry in report["time_to_stage"].items():
        if entry["values"]:
            chart.add(f"{stage} ({entry['patients']})", entry["values"])
        d = entry["days"] or {}
        stage_rows.append(
            f"<tr><td>{escape(stage)}</td><td class='n'>{entry['patients']}</td>"
            + "".join(
                f"<td class='n'>{d.get(k, '')}</td>" for k in ("min", "p25", "median", "p75", "max")
            )
            + "</tr>"
        )
    chart.y_title = "days"
    parts.append(_svg(chart))
    parts.append(
        "<table><tr><th>stage</th><th>patients</th><th>min</th><th>p25</th><th>median</th>"
        f"<th>p75</th><th>max</th></tr>{''.join(stage_rows)}</table>"
    )

    # --- proposals ----------------------------------------------------------------------------
    parts.append("<h2>Escalations proposed per week</h2>")
    parts.append(
        _weekly_svg(
            pygal.StackedBar(**_config()),
            "Proposals per week, by kind",
            weeks,
            report["proposals"]["per_week"],
        )
    )
    outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(report["proposals"]["outcomes"].items()))
    parts.append(f"<p>Decisions on proposals: {escape(outcomes or 'none')}.</p>")

    # --- workload -----------------------------------------------------------------------------
    parts.append("<h2>Workload per discipline per week</h2>")
    for chart_title, key in (
        ("Tasks created per week", "tasks_per_week"),
        ("Therapy sessions booked per week", "sessions_per_week"),
    ):
        chart = pygal.Line(**_config(dots_size=1.5))
        parts.append(_weekly_svg(chart, chart_title, weeks, report["workload"][key]))

    # --- messages -----------------------------------------------------------------------------
    parts.append("<h2>Messages per patient per week</h2>")
    per = messages["per_patient_week"]
    chart = pygal.Line(**_config(dots_size=1.5))
    budget = messages["daily_budget"]
    chart.title = f"Messages sent to a patient per week (daily budget {budget})"
    _weeks_axis(chart, weeks)
    chart.add("mean per enrolled patient", per["mean_per_week"])
    chart.add("busiest patient", per["max_per_week"])
    if budget:
        chart.add(
            "7 times the daily budget",
            [budget * 7] * weeks,
            show_dots=False,
            stroke_style={"dasharray": "6,4"},
        )
    parts.append(_svg(chart))
    outcome_text = ", ".join(f"{k}: {v}" for k, v in sorted(messages["outcomes"].items()))
    parts.append(f"<p>Delivery outcomes: {escape(outcome_text)}.</p>")

    # --- red flags ----------------------------------------------------------------------------
    parts.append("<h2>Red flags</h2>")
    parts.append(
        _weekly_svg(
            pygal.Bar(**_config(height=300, show_legend=False)),
            "Red-flag answers per week (each alerts the care team at once)",
            weeks,
            {"red-flag answers": report["red_flags"]["answers_per_week"]},
        )
    )
    flag_rows = "".join(
        f"<tr><td>{escape(code)}</td><td>answer</td><td class='n'>{n}</td></tr>"
        for code, n in sorted(report["red_flags"]["answers"].items())
    ) + "".join(
        f"<tr><td>{escape(code)}</td><td>pathway flag</td><td class='n'>{n}</td></tr>"
        for code, n in sorted(report["red_flags"]["pathway_flags"].items())
    )
    parts.append(f"<table><tr><th>code</th><th>from</th><th>count</th></tr>{flag_rows}</table>")

    # --- stuck --------------------------------------------------------------------------------
    stuck = report["stuck"]
    parts.append(f"<h2>Patients stuck (no transition for {stuck['after_weeks']:g} weeks)</h2>")
    if stuck["count"]:
        rows = "".join(
            f"<tr><td>{escape(state)}</td><td class='n'>{n}</td></tr>"
            for state, n in stuck["by_ladder_state"].items()
        )
        parts.append(
            f"<p>{stuck['count']} patients, by where the ladder waits:</p>"
            f"<table><tr><th>ladder state</th><th>patients</th></tr>{rows}</table>"
        )
    else:
        parts.append("<p class='ok'>None.</p>")

    body = "\n".join(parts)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _comparison(c: dict[str, Any]) -> str:
    def label(side: dict[str, Any]) -> str:
        thresholds = ", ".join(f"{k} = {v['value']}" for k, v in side["thresholds"].items())
        return side["pathway"] + (f" ({thresholds})" if thresholds else "")

    parts = [
        "<h2>Against another definition</h2>",
        f"<p>A: <b>{escape(label(c['base']))}</b>; B: <b>{escape(label(c['other']))}</b>. "
        "Same cohort and seed.</p>",
        "<table><tr><th>stage</th><th>patients A</th><th>patients B</th><th>median days A</th>"
        "<th>median days B</th><th>change</th></tr>",
    ]
    for stage, s in c["time_to_stage"].items():
        change = s["median_days_change"]
        parts.append(
            f"<tr><td>{escape(stage)}</td><td class='n'>{s['patients'][0]}</td>"
            f"<td class='n'>{s['patients'][1]}</td>"
            f"<td class='n'>{_number(s['median_days'][0])}</td>"
            f"<td class='n'>{_number(s['median_days'][1])}</td>"
            f"<td class='n'>{'' if change is None else f'{change:+g}'}</td></tr>"
        )
    parts.append("</table><div class='two'>")
    parts.append(_a_b_table("proposed", c["proposals"]))
    parts.append(_a_b_table("tasks", c["tasks"]))
    parts.append("</div>")
    return "".join(parts)


def _a_b_table(heading: str, counts: Mapping[str, tuple[Any, Any]]) -> str:
    """One count per name under A and under B."""
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td class='n'>{a}</td><td class='n'>{b}</td></tr>"
        for name, (a, b) in counts.items()
    )
    return f"<table><tr><th>{heading}</th><th>A</th><th>B</th></tr>{rows}</table>"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
