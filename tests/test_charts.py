"""The break-even chart: the data the cost engine computes, the Mermaid block GitHub renders in pull request
comments (checked with Mermaid's own parser, `make mermaid`), and the matplotlib image of `--plot`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.catalog.pricing import lookup
from selfhost.charts import mermaid
from selfhost.cli import app
from selfhost.cost_report import markdown, price_preview, to_json

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "tests" / "tools" / "mermaid" / "check.mjs"
MERMAID = ROOT / ".tools" / "mermaid" / "node_modules" / "mermaid"


@pytest.fixture(scope="module")
def graphs(previews):
    """Each shipped stack's estimate at the committed prices."""
    return {name: price_preview(p.to_json(), lookup) for name, p in previews.items()}


def parse_with_mermaid(text: str, tmp_path: Path) -> dict:
    if not MERMAID.exists():
        pytest.fail("Mermaid is not installed: run `make mermaid` (make test does)")
    source = tmp_path / "chart.mmd"
    source.write_text(text)
    # check.mjs resolves mermaid and jsdom from the tool env's node_modules.
    script = ROOT / ".tools" / "mermaid" / "check.mjs"
    script.write_text(CHECK.read_text())
    run = subprocess.run(["node", str(script), str(source)], capture_output=True, text=True, timeout=120)
    return json.loads(run.stdout.strip().splitlines()[-1])


def block(md: str) -> str:
    found = re.search(r"```mermaid\n(.*?)\n```", md, re.S)
    assert found, "no mermaid block in the markdown"
    return found.group(1)


def test_every_priced_stack_gets_a_chart_that_mermaid_parses(graphs, tmp_path):
    charted = 0
    for name, est in graphs.items():
        report = to_json(name, est)
        if report["chart"] is None:
            continue
        charted += 1
        result = parse_with_mermaid(block(markdown(report)), tmp_path)
        assert result == {"ok": True, "diagramType": "xychart"}, (name, result)
    assert charted >= 5


def test_mermaid_rejects_a_broken_chart(graphs, tmp_path):
    """The check can fail: a chart cut short is a parse error."""
    report = to_json("aws-prod", graphs["aws-prod"])
    broken = block(markdown(report)).replace("]", "", 1)
    assert parse_with_mermaid(broken, tmp_path)["ok"] is False


def test_the_chart_crosses_where_the_break_even_is(graphs):
    """The self-hosted line and an API line cross between the grid points around the reported break-even."""
    est = graphs["onprem"]
    chart = est.chart()
    assert chart is not None
    xs, own = chart["requestsPerDay"], chart["series"][0]["monthlyUsd"]
    for row, api in zip(est.api_comparison(), chart["series"][1:], strict=True):
        even = row["breakEvenRequestsPerDay"]
        if even is None or even > xs[-1]:
            continue
        before = max(i for i, x in enumerate(xs) if x <= even)
        assert api["monthlyUsd"][before] <= own[before] + 1e-6
        if before + 1 < len(xs):
            assert api["monthlyUsd"][before + 1] >= own[before + 1] - 1e-6
    # Monthly API cost is linear in the load; the stack's is a step per replica the load adds.
    assert chart["series"][1]["monthlyUsd"][0] == 0
    assert own == sorted(own)


def test_the_legend_names_every_line_in_its_colour(graphs):
    chart = graphs["aws-prod"].chart()
    text = mermaid(chart)
    assert text.count("    line [") == len(chart["series"])
    assert "blue: self-hosted (this stack)" in text


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_cost_plot_writes_the_same_chart(tmp_path, suffix):
    out = tmp_path / f"break-even{suffix}"
    result = CliRunner().invoke(app, ["cost", "aws-prod", "--plot", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    if suffix == ".svg":
        assert data.lstrip().startswith(b"<?xml") and b"<svg" in data
        text = data.decode()
        assert "self-hosted (this stack)" in text and "gpt-4.1-nano" in text
    else:
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_plot_refuses_what_it_cannot_draw(tmp_path):
    result = CliRunner().invoke(app, ["cost", "aws-prod", "--plot", str(tmp_path / "chart.pdf")])
    assert result.exit_code == 1 and ".svg or .png" in result.output
