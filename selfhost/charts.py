"""The break-even picture: monthly cost against requests per day for the stack and each compared API.

One data set (`Estimate.chart()`, the `chart` of `selfhost cost --format json`), drawn two ways: as a Mermaid
`xychart-beta` block, which GitHub renders in pull request comments (`--format markdown`), and with matplotlib
for reports (`--plot FILE.svg|png`). Mermaid's XY chart has no legend, so the block is followed by one, in the
colours of the palette the block sets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Self-hosted first (the thick line in reports), then one colour per API, as Mermaid's plotColorPalette.
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#ca8a04", "#9333ea", "#0891b2", "#db2777", "#65a30d")
COLOUR_NAMES = ("blue", "red", "green", "amber", "purple", "cyan", "pink", "lime")


def compact(value: float) -> str:
    """12,500 -> 12.5k; 2,000,000 -> 2M (axis labels)."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def series_with_data(chart: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in chart["series"] if any(v is not None for v in s["monthlyUsd"])]


def mermaid(chart: dict[str, Any]) -> str:
    """A fenced ```mermaid block and its legend."""
    series = series_with_data(chart)[: len(PALETTE)]
    top = max(v for s in series for v in s["monthlyUsd"] if v is not None)
    config = {"themeVariables": {"xyChart": {"plotColorPalette": ", ".join(PALETTE[: len(series)])}}}
    lines = ["```mermaid", f"%%{{init: {json.dumps(config)}}}%%", "xychart-beta",
             '    title "Monthly cost (USD) by requests per day"',
             '    x-axis "requests per day" [' + ", ".join(f'"{compact(x)}"' for x in chart["requestsPerDay"]) + "]",
             f'    y-axis "USD per month" 0 --> {_ceil(top * 1.05)}']
    for s in series:
        # A load beyond what the maximum replicas serve has no self-hosted cost: the line stops at the last point.
        values = [round(v, 2) for v in s["monthlyUsd"] if v is not None]
        lines.append("    line [" + ", ".join(f"{v:g}" for v in values) + "]")
    lines.append("```")
    legend = ", ".join(f"{COLOUR_NAMES[i]}: {s['name']}" for i, s in enumerate(series))
    lines.append(f"_Lines: {legend}. The stack's line steps up where the load needs another replica._")
    return "\n".join(lines)


def _ceil(value: float) -> int:
    """Up to two significant figures: 4,321 -> 4,400."""
    if value <= 0:
        return 1
    step = 10 ** max(len(str(int(value))) - 2, 0)
    return int(-(-value // step) * step)


def plot(chart: dict[str, Any], path: Path, title: str) -> None:
    """The same chart as an image; the format follows the file's suffix (.svg or .png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    xs = chart["requestsPerDay"]
    for i, s in enumerate(series_with_data(chart)):
        points = [(x, y) for x, y in zip(xs, s["monthlyUsd"], strict=True) if y is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], label=s["name"], color=PALETTE[i % len(PALETTE)],
                linewidth=3 if i == 0 else 1.6)
    ax.axvline(chart["currentRequestsPerDay"], color="#6b7280", linestyle=":", linewidth=1)
    ax.annotate("configured load", (chart["currentRequestsPerDay"], 0), textcoords="offset points", xytext=(4, 6),
                fontsize=8, color="#6b7280")
    ax.set_xlabel("requests per day")
    ax.set_ylabel("USD per month (730 h)")
    ax.set_title(title)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: compact(v)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${compact(v)}"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    # No timestamp or tool version in the file: the same data writes the same bytes.
    metadata = {"Date": None} if path.suffix == ".svg" else {"Software": None}
    fig.savefig(path, metadata=metadata)
    plt.close(fig)
