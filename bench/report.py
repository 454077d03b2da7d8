"""REPORT.md and the plots, from the scenario JSON files in bench/results/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.core import RESULTS, Context


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


def write_report(ctx: Context) -> Path:
    """Placeholder until the report writer lands: lists the result files."""
    lines = ["# carehub benchmarks", ""]
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        lines.append(f"- {data['title']} ({data['mode']})")
    out = ctx.results_dir / "REPORT.md"
    out.write_text("\n".join(lines) + "\n")
    return out
