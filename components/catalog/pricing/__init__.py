"""Cloud list prices, one row per (provider, service, region, sku), each with its source and as-of date.

The numbers live in data files, not in code: `data/aws.csv` and `data/gcp.csv` (header
provider,service,region,sku,usd,unit,source,as_of,confidence). `selfhost prices refresh` regenerates them from the
official machine-readable sources (AWS Price List bulk files and the EC2 Spot pricing page's JSON, GCP Cloud Billing
Catalog API); the committed rows were read by hand from the sources named in each row's `source`, on the `as_of`
date. Regions covered: us-east-1, us-west-2, eu-west-1 (AWS); us-central1, europe-west4 (GCP).

- aws ec2 / ec2-spot, gcp gce-machine / gce-machine-spot / gce-gpu / gce-gpu-spot: SkyPilot's catalog v9
  (skypilot-org/skypilot-catalog, catalogs/v9/{aws,gcp}/vms.csv, the commit pinned in each row). ec2-spot is the
  median of the per-zone SpotPrice values in the region (Local Zones left out), zones and values in the row's
  source; a refresh from the Spot page's JSON gives one price per region instead. A GCE machine price excludes its
  GPUs: those are the separate gce-gpu rows (per GPU).
- gcp gce-gpu / gce-gpu-spot the v9 catalog lacks or has wrong (A100 80GB, H100 Mega, europe-west4 A100 and H100,
  on-demand and spot): Cyclenerd/google-cloud-pricing-cost-calculator's pricing.yml (built from the Cloud Billing
  Catalog API, 2026-07-30) prices whole machines; a GPU = (machine - the gce-machine host row - bundled Local SSD x
  its GB-month price / 730) / GPU count, high (the same arithmetic gives back the us-central1 A100 40GB and H100
  rows). europe-west4 has the A100 at 1.00x us-central1 (2.93390825) and the H100 and H100 Mega at 1.30x (H100
  12.735516438), not the 1.05 of the L4, T4 and V100. us-central1 H100 Mega is the us-east4 machine (both bill the
  Americas SKU, quoted elsewhere at 10.344276). H200 us-central1 is one second-hand copy of the Cloud Billing SKU
  (9.31174, medium, unverified); europe-west4 = that x 1.30, the europe-west4/us-central1 ratio of the H100 and H100
  Mega in the same extract (low); spot rows no source gave (us-central1 H100 Mega and H200, europe-west4 H200) =
  on-demand x the region's median spot/on-demand ratio over its GPUs priced both ways (low).
- aws sagemaker-hosting: AWS's own fmbench tool (aws-samples/foundation-model-benchmarking-tool,
  src/fmbench/configs/pricing.yml, "SageMaker Hourly Instance Pricing", us-east-1) where it lists the type; other
  types and regions are derived: the EC2 on-demand price of the same hardware x the SageMaker/EC2 ratio, the median
  of the 12 us-east-1 pairs that file prices (1.25, one outlier 1.40), medium; P4de/P5 from the one P-family pair
  (1.7165), and every eu-west-1 row, low.
- gcp vertex-prediction / vertex-prediction-gpu: one Cloud Billing report itemising the Vertex SKUs (the H100 GPU and
  the A3 Core/Ram); the rest derived as the Compute Engine price x 1.15, the Vertex/GCE ratio of those five pairs
  (spread 0%), medium (or the Compute Engine row's confidence, if lower). Vertex bills the GPUs as their own SKU
  ("Online/Batch Prediction Nvidia H100 80gb GPU"), so a vertex-prediction row is the machine without GPUs; a row with
  usd 0 is accepted only if its source says "included", and there is none today. A machine price is vCPUs x the
  family's Core SKU + GiB x its Ram SKU, as Google bills it; shapes are in `data/gcp_machines.csv`. The us-central1
  H100 is the Vertex SKU / 1.15 (medium).
- network, storage, keys, secrets, monitoring: Infracost's golden test outputs (prices from the AWS and GCP price
  APIs, provider region us-east-1 / us-central1 stated in each test), the providers' pricing pages where they give
  one price for every region (AWS KMS key; GCP Cloud NAT), and a page quoting the AWS public IPv4 rate. Other regions
  are derived, and say how: us-west-2 = us-east-1 x 1.0 (the ratio of all 37 EC2 GPU types priced in both; low);
  eu-west-1 figures quoted second-hand from Price List extracts (NAT gateway, ALB LCU; medium) or hand-kept tables
  (gp3, interface endpoint; low), flat per-resource fees copied at 1.0 (low); europe-west4 capacity rows (disk,
  forwarding rule, PSC endpoint, BigQuery) = us-central1 x 1.1008, the median europe-west4/us-central1 ratio of the 40
  Compute Engine rows priced in both regions (1.05-1.10; low), flat fees (KMS, Secret Manager, Cloud DNS) x 1.0 (low).

Each row has a `confidence`: `list` when the number is the provider's own list price (read from its price list, its
pricing page, or a catalog that copies them, as `source` says); `high`, `medium` or `low` when no first-party
machine-readable figure was reachable and the row is derived. A derived row's source starts with `derived:` and
states the derivation and every figure it came from; a figure computed from a derived row is no more confident than
it (`least_confident`); cost reports show the confidence beside the price.

A price the sources did not give stays out of the table: `lookup` returns None, never 0. Values seen in a source but
not trusted are listed, with the reason, in `data/excluded.csv`; one that another source "later confirmed" stays
listed, saying so, and its row comes from that other source. A gap that remains is pinned, with its reason, in
the provider's test (tests/test_pricing_gcp.py KNOWN_GAPS: none for GCP today).
"""

from __future__ import annotations

import csv
import datetime
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
# Provider -> its price file: each platform registers its own (components/targets/registry.py), so a new
# platform's prices are read without an edit here.
FILES: dict[str, Path] = {}
UNITS = frozenset({"hour", "GB-month", "GB", "month", "10k-requests", "1M-requests"})
FIELDS = ("provider", "service", "region", "sku", "usd", "unit", "source", "as_of", "confidence")
CONFIDENCE = ("list", "high", "medium", "low")
DERIVED = "derived:"

Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class Price:
    usd: float  # price per `unit`
    unit: str  # one of UNITS
    source: str  # where the number comes from, precise enough to re-check
    as_of: str  # ISO date the number was valid/read
    confidence: str = "list"  # one of CONFIDENCE: `list`, or how far a derived figure can be trusted

    @property
    def derived(self) -> bool:
        return self.confidence != "list"


def least_confident(*confidences: str) -> str:
    """The confidence of a figure computed from several prices: that of the least trusted."""
    return max(confidences, key=CONFIDENCE.index)


@dataclass(frozen=True)
class PriceRow:
    provider: str
    service: str
    region: str
    sku: str
    usd: float
    unit: str
    source: str
    as_of: str
    confidence: str = "list"

    @property
    def key(self) -> Key:
        return (self.provider, self.service, self.region, self.sku)

    @property
    def price(self) -> Price:
        return Price(self.usd, self.unit, self.source, self.as_of, self.confidence)


def check_row(row: PriceRow) -> None:
    """Raise ValueError if `row` could mislead a cost estimate."""
    if not all((row.provider, row.service, row.region, row.sku)):
        raise ValueError(f"{row.key}: empty key field")
    if row.unit not in UNITS:
        raise ValueError(f"{row.key}: unit {row.unit!r} not in {sorted(UNITS)}")
    if not row.source.strip():
        raise ValueError(f"{row.key}: no source")
    datetime.date.fromisoformat(row.as_of)
    if row.confidence not in CONFIDENCE:
        raise ValueError(f"{row.key}: confidence {row.confidence!r} not in {list(CONFIDENCE)}")
    if (row.confidence != "list") != row.source.startswith(DERIVED):
        raise ValueError(f"{row.key}: a derived row (confidence high/medium/low) and only one has a source starting "
                         f"{DERIVED!r} that states its derivation")
    # Zero would read as "free" where the truth is "unknown"; only a source saying so makes it free.
    if not (row.usd > 0 or (row.usd == 0 and "included" in row.source.lower())):
        raise ValueError(f"{row.key}: usd {row.usd} must be > 0 (0 only when the source says included)")


def read_rows(path: Path) -> list[PriceRow]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f"{path}: header must be {','.join(FIELDS)}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            try:
                fields: dict[str, Any] = {**raw, "usd": float(raw["usd"])}
                row = PriceRow(**fields)
                check_row(row)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}:{line}: {e}") from e
            rows.append(row)
    return rows


def write_rows(path: Path, rows: list[PriceRow]) -> None:
    """Write sorted rows; repr keeps every digit the source gave (no rounding on the way through)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(FIELDS)
        for r in sorted(rows, key=lambda r: (r.service, r.region, r.sku)):
            writer.writerow([r.provider, r.service, r.region, r.sku, repr(r.usd), r.unit, r.source, r.as_of,
                             r.confidence])


def register(provider: str, path: Path) -> None:
    """Read `provider`'s prices from `path` (a platform's `price_file`)."""
    if FILES.get(provider, path) != path:
        raise ValueError(f"prices of {provider!r} are registered twice: {FILES[provider]} and {path}")
    FILES[provider] = path
    _table.cache_clear()


def load(data_dir: Path | None = None) -> dict[Key, PriceRow]:
    """Every row of every registered provider's file (or of `<provider>.csv` in `data_dir`); a key given twice is
    an error, not a silent override."""
    table: dict[Key, PriceRow] = {}
    for provider, registered in FILES.items():
        path = registered if data_dir is None else data_dir / registered.name
        if not path.exists():
            continue
        for row in read_rows(path):
            if row.provider != provider:
                raise ValueError(f"{path}: row for provider {row.provider!r}")
            if row.key in table:
                raise ValueError(f"{path}: duplicate row {row.key}")
            table[row.key] = row
    return table


@cache
def _table() -> dict[Key, PriceRow]:
    return load()


def lookup(provider: str, service: str, region: str, sku: str) -> Price | None:
    """The list price, or None when no source gave one (never 0 for unknown)."""
    row = _table().get((provider, service, region, sku))
    return row.price if row else None


def table() -> list[PriceRow]:
    return list(_table().values())
