"""Hugging Face Inference Endpoints prices, read from the page Hugging Face publishes them on.

The source is the documentation's own Markdown (huggingface/hf-endpoints-documentation,
docs/source/support/pricing.md), whose GPU table lists, per cloud vendor, the instance type and size with its
hourly rate; Hugging Face bills it per minute while an endpoint initializes or runs. `selfhost prices refresh
--hf-pricing` reads it from GitHub (or a local copy) and writes `data/huggingface.csv`: provider `huggingface`,
service `inference-endpoint`, region the vendor (`aws`, `gcp`: the rate is the same in each of a vendor's
regions), SKU `<instance type>-<size>` (nvidia-l4-x1). Rows the page marks deprecated are left out: they cannot
be created any more.
"""

from __future__ import annotations

import re

from . import PriceRow

PRICING_URL = ("https://raw.githubusercontent.com/huggingface/hf-endpoints-documentation/main/docs/source/support/"
               "pricing.md")
SERVICE = "inference-endpoint"
_ROW = re.compile(r"^\|\s*(?P<vendor>[a-z]+)\s*\|\s*(?P<type>[a-z0-9-]+)\s*\|\s*(?P<size>x\d+)\s*\|\s*"
                  r"\$(?P<usd>[0-9.]+)\s*\|\s*(?P<count>\d+)\s*\|(?P<rest>.*)$")


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
