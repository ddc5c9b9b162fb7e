"""What the `huggingface` platform reads online: its published GPU instance rates (`selfhost prices refresh`), from
the page Hugging Face publishes them on (components/catalog/pricing/hf.py reads and parses it). No quota reader:
Hugging Face publishes no API for a namespace's limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..catalog.pricing.hf import refresh


def refresh_prices(regions: Sequence[str], options: Mapping[str, Any]) -> list[Any]:
    """Hugging Face's rates are the same in each of a vendor's regions: `regions` changes nothing."""
    return refresh(options)
