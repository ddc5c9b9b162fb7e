"""Rebuild price rows from the official machine-readable sources: the generic part of `selfhost prices refresh`.

Each platform reads its own sources (`Platform.refresh_prices(regions, options)`, in its own package: the rules
that turn a provider's price list into rows live with the platform) and hands back `Result`s: rows and warnings.
What is generic is here: reading a source from a URL or a recorded copy, and merging the refreshed rows into the
registered providers' price files (`pricing.FILES`, filled from the registry).

A source's entry that no rule matches, whose unit is not the expected one, or whose price is missing, zero or
unparseable is skipped by the platform's reader: a missing row reads as "unknown", a wrong one as a real price.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import FILES, PriceRow, check_row, load, write_rows

Json = dict[str, Any]


@dataclass
class Result:
    """What one source gave: rows, and what was skipped and why."""

    rows: list[PriceRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(("https://", "http://"))


def read_json(location: str | Path) -> Json:
    """A JSON document from a URL or a file."""
    if is_url(location):
        with urllib.request.urlopen(str(location), timeout=120) as response:
            return json.load(response)
    with Path(location).open() as f:
        return json.load(f)


def read_text(location: str | Path) -> str:
    """A text document from a URL or a file."""
    if is_url(location):
        with urllib.request.urlopen(str(location), timeout=120) as response:
            return response.read().decode()
    return Path(location).read_text()


def merge_and_write(rows: list[PriceRow], out: Path) -> dict[str, int]:
    """Refreshed rows replace rows of the same key; rows the sources did not cover are kept as they were. Every
    registered provider's file in `out` (named as its registered file) is rewritten; returns the rows per provider."""
    for row in rows:
        check_row(row)
        if row.provider not in FILES:
            raise ValueError(f"{row.key}: no price file is registered for provider {row.provider!r}; registered: "
                             f"{', '.join(FILES) or 'none'}")
    merged = {**load(out), **{r.key: r for r in rows}}
    counts = {}
    for provider, path in FILES.items():
        provider_rows = [r for r in merged.values() if r.provider == provider]
        if provider_rows:
            write_rows(out / path.name, provider_rows)
        counts[provider] = len(provider_rows)
    return counts
