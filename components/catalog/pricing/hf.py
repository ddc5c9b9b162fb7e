"""Hugging Face Inference Endpoints prices, read from the page Hugging Face publishes them on.

The source is the documentation's own Markdown (huggingface/hf-endpoints-documentation,
docs/source/support/pricing.md), whose GPU table lists, per cloud vendor, the instance type and size with its
hourly rate; Hugging Face bills it per minute while an endpoint initializes or runs. `selfhost prices refresh
--hf-pricing` reads it from GitHub (or a local copy) and writes `data/huggingface.csv`: provider `huggingface`,
service `inference-endpoint`, region the vendor (`aws`, `gcp`: the rate is the same in each of a vendor's
regions), SKU `<instance type>-<size>` (nvidia-l4-x1). Rows the page marks deprecated are left out: they cannot
be created any more. `refresh` is the platform's price refresh (components/targets/huggingface.py).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import PriceRow

if TYPE_CHECKING:
    from .refresh import Result

PRICING_URL = ("https://raw.githubusercontent.com/huggingface/hf-endpoints-documentation/main/docs/source/support/"
               "pricing.md")
SERVICE = "inference-endpoint"
_ROW = re.compile(r"^\|\s*(?P<vendor>[a-z]+)\s*\|\s*(?P<type>[a-z0-9-]+)\s*\|\s*(?P<size>x\d+)\s*\|\s*"
                  r"\$(?P<usd>[0-9.]+)\s*\|\s*(?P<count>\d+)\s*\|(?P<rest>.*)$")


def refresh(options: Mapping[str, Any]) -> list[Result]:
    """The `huggingface` platform's refresh (`selfhost prices refresh`): the page's GPU rows. `options`:
    `hf_pricing` (the page's URL or a local copy; None or `default`: PRICING_URL), `today` (the rows' as-of).
    A page that cannot be read, or has no GPU table, gives a warning and no rows."""
    from .refresh import Result

    source = options.get("hf_pricing") or "default"
    source = PRICING_URL if source == "default" else str(source)
    today = options.get("today") or datetime.date.today()
    try:
        rows = parse_pricing(read_pricing(source), source, today.isoformat())
    except OSError as e:
        return [Result(warnings=[f"Hugging Face prices not refreshed: {e}"])]
    if not rows:
        return [Result(warnings=[f"Hugging Face prices not refreshed: no GPU Instances table in {source}"])]
    return [Result(rows)]


def parse_pricing(markdown: str, source: str, as_of: str) -> list[PriceRow]:
    """The GPU table's rows (its section only: CPU and Inferentia rows are not GPU hosts)."""
    section = markdown.split("## GPU Instances", 1)[-1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        m = _ROW.match(line.strip())
        if not m or "deprecated" in m["rest"].lower():
            continue
        sku = f"{m['type']}-{m['size']}"
        rows.append(PriceRow("huggingface", SERVICE, m["vendor"], sku, float(m["usd"]), "hour",
                             f"{source}: GPU Instances table, {m['vendor']} {m['type']} {m['size']} "
                             f"'${m['usd']}' ({m['count']} GPU{'s' * (m['count'] != '1')}; billed per minute)",
                             as_of))
    return rows


def read_pricing(source: str) -> str:
    """The page's Markdown from its URL or a local copy."""
    if source.startswith(("https://", "http://")):
        import urllib.request

        with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310 (a fixed https URL or the user's)
            return response.read().decode()
    from pathlib import Path

    return Path(source).read_text()
