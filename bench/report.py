"""REPORT.md and the plots, from the scenario JSON files in bench/results/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.core import Context


def new_figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=80)
    return fig, ax


def save_figure(ctx: Context, fig: Any, name: str) -> str:
    import matplotlib.pyplot as plt

    ctx.results_dir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(ctx.results_dir / name)
    plt.close(fig)
    return name


ORDER = [
    "p1_burst",
    "p2_beat",
    "p3_claim",
    "p4_caseload",
    "p5_engine",
    "p6_soak",
    "p7_simulate",
    "p8_fhir_export",
    "p9_migrate",
]
# The fault scenarios (ADR 0016).
ORDER += ["f1_burst_faults", "f2_postgres_restart", "f3_two_beats", "f4_http_conflicts"]
MARK = {True: "met", False: "**missed**", None: "not measured"}


def _load(results_dir: Path) -> list[dict[str, Any]]:
    found = {p.stem: json.loads(p.read_text()) for p in results_dir.glob("*.json")}
    return [found[name] for name in ORDER if name in found]


def _fixes(results_dir: Path) -> list[dict[str, Any]]:
    path = results_dir / "fixes.json"
    return json.loads(path.read_text()) if path.exists() else []


def write_report(ctx: Context) -> Path:
    """REPORT.md: the targets table, then each scenario with its figures and plot."""
    results = _load(ctx.results_dir)
    lines = ["# carehub benchmarks", ""]
    modes = sorted({r["mode"] for r in results})
    lines += [
        "Produced by `make bench` (`python -m bench`); reproduce with `make bench` "
        "(full) or `make bench BENCH_ARGS=--quick`, one scenario with e.g. "
        '`make bench BENCH_ARGS="--quick p3"`. Every figure below comes from the JSON files '
        "next to this report (inputs, machine facts, every run).",
        "",
        f"**Mode of these results: {', '.join(modes) or 'none'}.** "
        + (
            "Quick mode uses smaller scales and shorter runs than the targets name (each "
            "scenario says what it ran); the full mode runs the targets' scales."
            if "quick" in modes
            else ""
        ),
        "",
    ]
    if results:
        machine = results[0]["machine"]
        lines += [
            f"Machine: {machine.get('cpu_count')} CPUs ({machine.get('cpu_model')}), "
            f"{machine.get('memory_gib')} GiB, PostgreSQL {machine.get('postgresql')}, "
            f"Redis {machine.get('redis')}, Python {machine.get('python')}; commit "
            f"{machine.get('git_commit', '?')}. The machine is shared: other work ran on it "
            "at the same time (load average at each scenario's end is in its JSON), so "
            "comparisons are measured as ratios within one run, A and B alternated.",
            "",
        ]
    lines += ["## Targets", "", "| Target | Required | Measured | |", "|---|---|---|---|"]
    for result in results:
        for target in result["targets"]:
            lines.append(
                f"| {target['name']} | {target['target']} | {target['measured']} | "
                f"{MARK[target['met']]} |"
            )
    fixes = _fixes(ctx.results_dir)
    if fixes:
        lines += ["", "## Where a target was missed: profiles, fixes (before / after)", ""]
        for fix in fixes:
            lines += [f"### {fix['title']}", "", fix["what"], ""]
            lines += ["| Measure | Before | After |", "|---|---|---|"]
            for row in fix["rows"]:
                lines.append(f"| {row[0]} | {row[1]} | {row[2]} |")
            lines.append("")
    for result in results:
        lines += ["", f"## {result['title']}", ""]
        lines.append(
            f"Mode: {result['mode']}; {result['duration_seconds']} s; finished "
            f"{result['finished_at']}; load average at the end "
            f"{result['machine'].get('load_average')}."
        )
        lines += ["", "Inputs: " + ", ".join(f"{k} = {v}" for k, v in result["inputs"].items()), ""]
        lines += _summary_lines(result["scenario"], result["summary"], result["inputs"])
        for note in result["notes"]:
            lines += ["", f"- {note}"]
        for plot in result["plots"]:
            lines += ["", f"![{result['scenario']}]({plot})"]
    lines.append("")
    out = ctx.results_dir / "REPORT.md"
    out.write_text("\n".join(lines))
    return out


def _summary_lines(scenario: str, summary: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    if scenario == "p3_claim":
        rows = ["| Table | Rows | median ms | p95 ms | partial index |", "|---|---|---|---|---|"]
        for table, data in summary.items():
            for size, figures in data["by_size"].items():
                rows.append(
                    f"| {table} | {int(size):,} | {figures['median']:.2f} | "
                    f"{figures['p95']:.2f} | {figures['uses_partial_index']} |"
                )
            rows.append(f"| {table} | 1M / 10k | {data['ratio_1m_to_10k_median']}x | | |")
        return rows
    if scenario == "p2_beat":
        poll = inputs.get("sweep_interval_seconds", 15)  # runs before it was an input: 15
        rows = [
            f"| Schedules | beat median s | carehub median s | ratio | ratio, +{poll} s sweep "
            "interval |",
            "|---|---|---|---|---|",
        ]
        for size, data in summary.items():
            rows.append(
                f"| {int(size):,} | {data['beat']['median']} | "
                f"{data['carehub']['median']} | {data['ratio_median']}x | "
                f"{data['ratio_worst_case_poll']}x |"
            )
        return rows
    compact = {k: v for k, v in summary.items() if k not in {"plan"}}
    return ["```json", json.dumps(compact, indent=1, default=str)[:3000], "```"]
