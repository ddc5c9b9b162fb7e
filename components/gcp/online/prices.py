"""Google Cloud list prices for `selfhost prices refresh` (through the platform, components/targets/gcp.py): the
Cloud Billing Catalog API (an API key).

`/v1/services` lists the services, `/v1/services/{id}/skus` their SKUs, page by page (`nextPageToken`). A SKU has a
description, `category.usageType` (OnDemand, Preemptible, Commit1Yr, ...), `serviceRegions` and
`pricingInfo[].pricingExpression` (usageUnit, tieredRates[].unitPrice as units + nanos). GPUs are one SKU each; a
machine is billed per vCPU and per GiB of RAM, so its price is rebuilt from its family's Core and Ram SKUs and its
shape (components/catalog/pricing/data/gcp_machines.csv).

The API is read with a key, or from a directory of recorded pages in the same layout (the network may be out of
reach). Which SKUs become which rows is the rule table below. A SKU no rule matches, whose unit is not the expected
one, or whose price is missing, zero or unparseable is skipped: a missing row reads as "unknown", a wrong one as a
real price. A tiered price takes the first tier with a non-zero rate (a free allowance is not the rate).
"""

from __future__ import annotations

import csv
import datetime
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ...catalog.pricing import DATA_DIR, PriceRow
from ...catalog.pricing.refresh import Json, Result, read_json

PROVIDER = "gcp"
GCP_BASE = "https://cloudbilling.googleapis.com"

# (API path such as "v1/services", page token or "") -> one response page
Fetch = Callable[[str, str], Json]


def refresh(regions: Sequence[str], options: Mapping[str, Any]) -> list[Result]:
    """The Cloud Billing Catalog's rows for `regions`. `options`: `gcp_skus` (a directory of recorded pages,
    v1/services.json and v1/services/{id}/skus[@token].json, used instead of the API) or `gcp_api_key` (the API's
    key); `today` (the rows' as-of). Without either, a warning and no rows."""
    regions = list(regions)
    if not regions:
        return []
    today = options.get("today") or datetime.date.today()
    if options.get("gcp_skus") is not None:
        fetch = gcp_dir_fetch(Path(options["gcp_skus"]))
    elif options.get("gcp_api_key"):
        fetch = gcp_api_fetch(str(options["gcp_api_key"]))
    else:
        return [Result(warnings=["GCP skipped: no --gcp-api-key (or GCP_BILLING_API_KEY) and no --gcp-skus."])]
    return [refresh_gcp(fetch, regions, today)]


@dataclass(frozen=True)
class GcpRule:
    service: str  # Cloud Billing service display name
    description: str  # regex, full match (case-insensitive) on the SKU description
    usage_type: str  # category.usageType
    target: str  # our service; "gpu" rules have a (?P<gpu>) group, machine part rules (?P<family>) and (?P<part>)
    sku: str = ""  # a fixed sku of ours (network, storage rows); set, the description needs no group


_FAMILY = r"(?P<family>N1|G2|A2|A3)(?: Predefined)? Instance (?P<part>Core|Ram) running in .+"
GCP_RULES: tuple[GcpRule, ...] = (
    GcpRule("Compute Engine", r"Nvidia (?P<gpu>[\w ]+?) GPU running in .+", "OnDemand", "gce-gpu"),
    GcpRule("Compute Engine", r"Nvidia (?P<gpu>[\w ]+?) GPU attached to Spot Preemptible VMs running in .+",
            "Preemptible", "gce-gpu-spot"),
    GcpRule("Compute Engine", _FAMILY, "OnDemand", "gce-machine"),
    GcpRule("Compute Engine", "Spot Preemptible " + _FAMILY, "Preemptible", "gce-machine-spot"),
    GcpRule("Vertex AI", r"Vertex AI: Online/Batch Prediction Nvidia (?P<gpu>[\w ]+?) GPU running in .+",
            "OnDemand", "vertex-prediction-gpu"),
    GcpRule("Vertex AI", "Vertex AI: Online/Batch Prediction " + _FAMILY, "OnDemand", "vertex-prediction"),
    # Descriptions as matched by infracost (internal/resources/google/compute_cost_component_helpers.go
    # "/^Balanced PD Capacity/", bigquery_table.go "Active Logical Storage (<region>)") and public Cloud Billing
    # readers ("Networking Cloud Nat Gateway Uptime" in service Networking; "Private Nat" is another product).
    GcpRule("Compute Engine", r"Balanced PD Capacity(?: in .+)?", "OnDemand", "pd-balanced", "gb-month"),
    GcpRule("Networking", r"(?:Networking )?Cloud NAT Gateway Uptime(?: .+)?", "OnDemand", "cloud-nat", "gateway-hour"),
    GcpRule("Compute Engine", r"Cloud NAT Gateway Uptime(?: .+)?", "OnDemand", "cloud-nat", "gateway-hour"),
    # Not verified against a recorded page: the consumer-endpoint SKU's exact wording was not found offline.
    GcpRule("Networking", r"(?:Networking )?(?:Private Service Connect|PSC) (?:Consumer )?Endpoint(?: Uptime)?(?: .+)?",
            "OnDemand", "psc-endpoint", "hour"),
    GcpRule("BigQuery", r"Active (?:Logical )?Storage(?: \([\w-]+\))?", "OnDemand", "bigquery", "active-storage"),
)

# GPU name in SKU descriptions (upper-cased) -> Vertex accelerator enum, our GPU sku. Names not listed are
# skipped: "H100 80GB Plus" could be the Mega variant, and a guess would price the wrong GPU.
GCP_GPU_NAMES: dict[str, str] = {
    "TESLA T4": "NVIDIA_TESLA_T4",
    "TESLA V100": "NVIDIA_TESLA_V100",
    "L4": "NVIDIA_L4",
    "TESLA A100": "NVIDIA_TESLA_A100",
    "TESLA A100 80GB": "NVIDIA_A100_80GB",
    "A100 80GB": "NVIDIA_A100_80GB",
    "H100 80GB": "NVIDIA_H100_80GB",
}
# GCP usage units -> ours; "GiBy.h" (RAM) only feeds machine prices.
GCP_UNITS = {"h": "hour", "GiBy.mo": "GB-month", "GiBy": "GB", "mo": "month"}


@dataclass(frozen=True)
class MachineShape:
    machine: str
    vcpus: int
    memory_gib: Decimal
    billing_family: str  # the family word in Core/Ram SKU descriptions; empty when not known


def gcp_api_fetch(api_key: str) -> Fetch:
    def fetch(path: str, page_token: str) -> Json:
        query = {"key": api_key, "currencyCode": "USD", "pageSize": "5000"}
        if page_token:
            query["pageToken"] = page_token
        return read_json(f"{GCP_BASE}/{path}?{urllib.parse.urlencode(query)}")

    return fetch


def gcp_dir_fetch(root: Path) -> Fetch:
    """Recorded pages: `{root}/v1/services.json`, `{root}/v1/services/{id}/skus.json`, and the page after
    token T in `skus@T.json`."""

    def fetch(path: str, page_token: str) -> Json:
        return read_json(root / f"{path}{'@' + page_token if page_token else ''}.json")

    return fetch


def gcp_pages(fetch: Fetch, path: str, items: str) -> Iterator[Json]:
    """Every item of a paged list, following nextPageToken; a token seen twice ends it (no endless loop)."""
    token, seen = "", set()
    while True:
        page = fetch(path, token)
        yield from page.get(items, [])
        token = page.get("nextPageToken") or ""
        if not token or token in seen:
            return
        seen.add(token)


# ---------------------------------------------------------------- SKUs to rows


def read_machine_shapes(path: Path = DATA_DIR / "gcp_machines.csv") -> list[MachineShape]:
    with path.open(newline="") as f:
        return [MachineShape(r["machine"], int(r["vcpus"]), Decimal(r["memory_gib"]), r["billing_family"])
                for r in csv.DictReader(f)]


def gcp_unit_price(sku: Json) -> tuple[Decimal, str] | None:
    """(price per usage unit, usage unit) of the SKU's latest pricing, first non-zero tier; None if unusable."""
    infos = sku.get("pricingInfo") or []
    if not infos:
        return None
    expression = max(infos, key=lambda i: i.get("effectiveTime", "")).get("pricingExpression", {})
    tiers = []
    for tier in expression.get("tieredRates", []):
        price = tier.get("unitPrice", {})
        if price.get("currencyCode", "USD") != "USD":
            return None
        try:
            usd = Decimal(int(price.get("units") or 0)) + Decimal(int(price.get("nanos") or 0)) / 10**9
            start = Decimal(str(tier.get("startUsageAmount", 0)))
        except (InvalidOperation, ValueError, TypeError):
            return None
        if usd > 0:
            tiers.append((start, usd))
    if not tiers or not expression.get("usageUnit"):
        return None
    return min(tiers)[1], expression["usageUnit"]


def parse_gcp_skus(service_name: str, skus_url: str, skus: list[Json], regions: list[str],
                   shapes: list[MachineShape], as_of: str) -> Result:
    """Rows for one Cloud Billing service's SKUs: GPUs directly, machines rebuilt from Core and Ram SKUs."""
    rules = [r for r in GCP_RULES if r.service == service_name]
    result = Result()
    # (target, region, sku or (family, part)) -> {price: (sku id, description, unit)}
    found: dict[tuple[str, str, str], dict[Decimal, tuple[str, str, str]]] = {}
    for sku in skus:
        description = sku.get("description", "")
        usage_type = sku.get("category", {}).get("usageType", "")
        for rule in rules:
            match = re.fullmatch(rule.description, description, flags=re.IGNORECASE)
            if not match or usage_type != rule.usage_type:
                continue
            if rule.sku:
                name = rule.sku
            elif "gpu" in match.groupdict():
                gpu = GCP_GPU_NAMES.get(match["gpu"].upper())
                if gpu is None:
                    continue
                name = gpu
            else:
                # A machine part, e.g. "A3/core"; the "/" keeps it apart from GPU names.
                name = f"{match['family'].upper()}/{match['part'].lower()}"
            priced = gcp_unit_price(sku)
            if priced is None:
                result.warnings.append(f"{service_name}: '{description}': no usable price, skipped")
                continue
            for region in regions:
                if region in sku.get("serviceRegions", []):
                    found.setdefault((rule.target, region, name), {})[priced[0]] = (
                        sku.get("skuId", ""), description, priced[1])

    def one(key: tuple[str, str, str]) -> tuple[Decimal, tuple[str, str, str]] | None:
        prices = found.get(key)
        if not prices:
            return None
        if len(prices) > 1:
            result.warnings.append(f"{service_name} {key}: {len(prices)} different prices, skipped")
            return None
        return next(iter(prices.items()))

    def cite(price: Decimal, sku_id: str, description: str, unit: str) -> str:
        return f"SKU {sku_id} '{description}' ${price}/{unit}"

    for target, region, name in sorted({k for k in found if "/" not in k[2]}):
        chosen = one((target, region, name))
        if chosen is None:
            continue
        usd, (sku_id, description, unit) = chosen
        if unit not in GCP_UNITS:
            result.warnings.append(f"{service_name} {target} {name}: unit {unit!r} not known, skipped")
            continue
        result.rows.append(PriceRow(PROVIDER, target, region, name, float(usd), GCP_UNITS[unit],
                                    f"{skus_url}: {cite(usd, sku_id, description, unit)}", as_of))

    for target, region in sorted({(k[0], k[1]) for k in found if "/" in k[2]}):
        for shape in shapes:
            family = shape.billing_family.upper()
            core = one((target, region, f"{family}/core")) if family else None
            ram = one((target, region, f"{family}/ram")) if family else None
            if core is None or ram is None or core[1][2] != "h" or ram[1][2] != "GiBy.h":
                continue
            usd = core[0] * shape.vcpus + ram[0] * shape.memory_gib
            result.rows.append(PriceRow(
                PROVIDER, target, region, shape.machine, float(usd), "hour",
                f"{skus_url}: {shape.vcpus} vCPU x {cite(core[0], *core[1])} + {shape.memory_gib} GiB x "
                f"{cite(ram[0], *ram[1])} = ${usd} (shape: gcp_machines.csv; GPUs are separate SKUs)", as_of))
    return result


def gcp_service_ids(fetch: Fetch) -> dict[str, str]:
    """Display name -> service id (e.g. "Compute Engine" -> "6F81-5844-456A")."""
    return {s.get("displayName", ""): s.get("serviceId", "") for s in gcp_pages(fetch, "v1/services", "services")}


def refresh_gcp(fetch: Fetch, regions: list[str], today: datetime.date,
                shapes: list[MachineShape] | None = None) -> Result:
    result = Result()
    shapes = read_machine_shapes() if shapes is None else shapes
    try:
        ids = gcp_service_ids(fetch)
    except (OSError, ValueError) as e:
        result.warnings.append(f"Cloud Billing services: {e}")
        return result
    for name in sorted({r.service for r in GCP_RULES}):
        if name not in ids:
            result.warnings.append(f"Cloud Billing: no service named {name!r}")
            continue
        path = f"v1/services/{ids[name]}/skus"
        try:
            skus = list(gcp_pages(fetch, path, "skus"))
        except (OSError, ValueError) as e:
            result.warnings.append(f"{name}: {e}")
            continue
        parsed = parse_gcp_skus(name, f"{GCP_BASE}/{path}", skus, regions, shapes, today.isoformat())
        result.rows += parsed.rows
        result.warnings += parsed.warnings
    return result
