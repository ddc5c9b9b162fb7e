"""Rebuild price rows from the official machine-readable sources.

AWS Price List bulk API (no credentials): one offer file per service and region,
`{base}/offers/v1.0/aws/{offer}/current/{region}/index.json`. `products` maps a product sku to its
attributes (usagetype such as `USE1-Host:ml.g5.xlarge`, instanceType, operatingSystem, tenancy, ...);
`terms.OnDemand` maps the same sku to offer terms whose priceDimensions carry `unit` and `pricePerUnit.USD`.

GCP Cloud Billing Catalog API (API key): `/v1/services` lists the services, `/v1/services/{id}/skus` their
SKUs, page by page (`nextPageToken`). A SKU has a description, `category.usageType` (OnDemand, Preemptible,
Commit1Yr, ...), `serviceRegions` and `pricingInfo[].pricingExpression` (usageUnit, tieredRates[].unitPrice
as units + nanos). GPUs are one SKU each; a machine is billed per vCPU and per GiB of RAM, so its price is
rebuilt from its family's Core and Ram SKUs and its shape (data/gcp_machines.csv).

Both sources are read from a URL or from a directory holding files in the same layout (recorded
responses; the network may be out of reach). Which entries become which rows is the two rule tables
below. An entry no rule matches, whose unit is not the expected one, or whose price is missing, zero or
unparseable is skipped: a missing row reads as "unknown", a wrong one as a real price. A tiered price
takes the first tier with a non-zero rate (a free allowance is not the rate).
"""

from __future__ import annotations

import csv
import datetime
import json
import re
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from . import DATA_DIR, FILES, PriceRow, check_row, load, write_rows

AWS_BASE = "https://pricing.us-east-1.amazonaws.com"
GCP_BASE = "https://cloudbilling.googleapis.com"
DEFAULT_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "us-central1", "europe-west4")
AWS_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
GCP_REGION = re.compile(r"[a-z]+-[a-z]+\d+")

Json = dict[str, Any]
# (API path such as "v1/services", page token or "") -> one response page
Fetch = Callable[[str, str], Json]

# AWS usage types carry a region prefix (USE1-, USW2-, EU-), except some us-east-1 ones.
_PREFIX = r"(?:[A-Z0-9]+-)?"


@dataclass(frozen=True)
class AwsRule:
    offer: str  # offer code: the directory of the bulk file
    service: str  # our service name
    usagetype: str  # regex, full match on the product's usagetype
    sku: str  # our sku: fixed text, or "{1}" for the usagetype regex's first group
    units: tuple[str, ...]  # the offer's unit names this rule accepts
    unit: str  # our unit
    attributes: tuple[tuple[str, str], ...] = ()  # product attributes that must have these values
    family: str = ""  # the product's productFamily (beside its attributes), when the usagetype alone is ambiguous


LINUX_ON_DEMAND = (("operatingSystem", "Linux"), ("tenancy", "Shared"), ("preInstalledSw", "NA"),
                   ("capacitystatus", "Used"), ("licenseModel", "No License required"))

AWS_RULES: tuple[AwsRule, ...] = (
    AwsRule("AmazonSageMaker", "sagemaker-hosting", _PREFIX + r"Host:(ml\.[a-z0-9-]+\.[a-z0-9]+)", "{1}",
            ("Hrs",), "hour"),
    AwsRule("AmazonEC2", "ec2", _PREFIX + r"BoxUsage:([a-z0-9-]+\.[a-z0-9]+)", "{1}", ("Hrs",), "hour",
            LINUX_ON_DEMAND),
    AwsRule("AmazonEC2", "nat-gateway", _PREFIX + "NatGateway-Hours", "hour", ("Hrs",), "hour"),
    AwsRule("AmazonEC2", "nat-gateway", _PREFIX + "NatGateway-Bytes", "data", ("GB",), "GB"),
    AwsRule("AmazonVPC", "vpc-endpoint", _PREFIX + "VpcEndpoint-Hours", "interface-az-hour", ("Hrs",), "hour"),
    AwsRule("AmazonVPC", "vpc-endpoint", _PREFIX + "VpcEndpoint-Bytes", "data", ("GB",), "GB"),
    AwsRule("AmazonVPC", "public-ipv4", _PREFIX + "PublicIPv4:InUseAddress", "hour", ("Hrs",), "hour"),
    AwsRule("AmazonS3", "s3", _PREFIX + "TimedStorage-ByteHrs", "standard", ("GB-Mo",), "GB-month"),
    AwsRule("awskms", "kms", _PREFIX + "KMS-Keys", "key", ("Keys",), "month"),
    AwsRule("AWSSecretsManager", "secretsmanager", _PREFIX + "AWSSecretsManager-Secrets", "secret",
            ("Secrets",), "month"),
    AwsRule("AmazonCloudWatch", "cloudwatch", _PREFIX + "(?:CW:)?AlarmMonitorUsage", "alarm", ("Alarms",), "month"),
    AwsRule("AmazonCloudWatch", "cloudwatch", _PREFIX + "DashboardsUsageHour", "dashboard", ("Dashboards",),
            "month"),
    AwsRule("AmazonCloudWatch", "cloudwatch", _PREFIX + "DataProcessing-Bytes", "logs-ingest", ("GB",), "GB"),
    AwsRule("AmazonCloudWatch", "cloudwatch", _PREFIX + "TimedStorage-ByteHrs", "logs-storage", ("GB-Mo",),
            "GB-month"),
    # Classic, Network and Gateway load balancers share these usagetypes; productFamily tells the ALB apart.
    AwsRule("AWSELB", "elb", _PREFIX + "LoadBalancerUsage", "application-lb-hour", ("Hrs",), "hour",
            family="Load Balancer-Application"),
    AwsRule("AWSELB", "elb", _PREFIX + "LCUUsage", "application-lb-lcu-hour", ("LCU-Hrs",), "hour",
            family="Load Balancer-Application"),
    AwsRule("AmazonEC2", "ebs", _PREFIX + r"EBS:VolumeUsage\.gp3", "gp3", ("GB-Mo",), "GB-month", family="Storage"),
)


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


@dataclass
class Result:
    rows: list[PriceRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- reading sources


def read_json(location: str | Path) -> Json:
    if isinstance(location, str) and location.startswith(("https://", "http://")):
        with urllib.request.urlopen(location, timeout=120) as response:
            return json.load(response)
    with Path(location).open() as f:
        return json.load(f)


def aws_offer_url(offer: str, region: str, base: str = AWS_BASE) -> str:
    return f"{base.rstrip('/')}/offers/v1.0/aws/{offer}/current/{region}/index.json"


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


# ---------------------------------------------------------------- AWS


def _decimal(text: Any) -> Decimal | None:
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _first_paid_tier(dimensions: list[Json], units: tuple[str, ...]) -> Decimal | None:
    tiers = []
    for d in dimensions:
        usd, begin = _decimal(d.get("pricePerUnit", {}).get("USD")), _decimal(d.get("beginRange", "0"))
        if d.get("unit") in units and usd is not None and begin is not None and usd > 0:
            tiers.append((begin, usd))
    return min(tiers)[1] if tiers else None


def parse_aws_offer(offer: Json, region: str, source_url: str) -> Result:
    """Rows for every product of one regional offer file that an AWS_RULES entry matches."""
    code = offer.get("offerCode", "")
    version = offer.get("version", "")
    as_of = str(offer.get("publicationDate", ""))[:10]
    source = f"{source_url} (offer {code}, version {version})"
    rules = [r for r in AWS_RULES if r.offer == code]
    on_demand = offer.get("terms", {}).get("OnDemand", {})
    result = Result()
    try:
        datetime.date.fromisoformat(as_of)
    except ValueError:
        result.warnings.append(f"{code} {region}: no publicationDate, offer skipped")
        return result
    found: dict[tuple[str, str], set[Decimal]] = {}
    units: dict[tuple[str, str], str] = {}
    for product_sku, product in offer.get("products", {}).items():
        attrs = product.get("attributes", {})
        # Regional files may hold inter-region products; an empty regionCode is a global product (dashboards).
        if attrs.get("regionCode", region) not in (region, ""):
            continue
        for rule in rules:
            match = re.fullmatch(rule.usagetype, attrs.get("usagetype", ""))
            if not match or any(attrs.get(k) != v for k, v in rule.attributes):
                continue
            if rule.family and product.get("productFamily") != rule.family:
                continue
            dimensions = [d for term in on_demand.get(product_sku, {}).values()
                          for d in term.get("priceDimensions", {}).values()]
            usd = _first_paid_tier(dimensions, rule.units)
            if usd is None:
                result.warnings.append(f"{code} {region} {attrs.get('usagetype')}: no usable on-demand price "
                                       f"in units {rule.units}, skipped")
                continue
            key = (rule.service, rule.sku.replace("{1}", match.group(1)) if "{1}" in rule.sku else rule.sku)
            found.setdefault(key, set()).add(usd)
            units[key] = rule.unit
    for (service, sku), prices in sorted(found.items()):
        if len(prices) > 1:
            # Two products claim the same key at different prices: the rules are not precise enough.
            result.warnings.append(f"{code} {region} {service}/{sku}: {len(prices)} different prices, skipped")
            continue
        result.rows.append(PriceRow("aws", service, region, sku, float(prices.pop()), units[(service, sku)],
                                    source, as_of))
    return result


# ---------------------------------------------------------------- AWS Spot

# EC2 Spot prices are not in the Price List. The EC2 Spot pricing page (aws.amazon.com/ec2/spot/pricing/) loads
# this public JSON, no credentials: {"vers": .., "config": {"rate": "perhr", "valueColumns": ["linux", "mswin"],
# "currencies": ["USD"], "regions": [{"region": "us-east-1", "instanceTypes": [{"type": "gpuCurrentGen", "sizes":
# [{"size": "g5.xlarge", "valueColumns": [{"name": "linux", "prices": {"USD": "0.4360"}}, ...]}]}]}]}}. It is served
# as application/x-javascript and has been wrapped as JSONP (`callback({...});`); the wrapper is stripped. Newer
# types can read "N/A*" or 0 there: skipped, never 0. One price per region (no per-zone values).
SPOT_URL = "https://website.spot.ec2.aws.a2z.com/spot.json"
# Region names of the older feed (spot.js) -> region codes; current files use the codes themselves.
SPOT_REGION_NAMES = {
    "us-east": "us-east-1", "us-west": "us-west-1", "eu-ireland": "eu-west-1", "apac-sin": "ap-southeast-1",
    "apac-syd": "ap-southeast-2", "apac-tokyo": "ap-northeast-1",
}


def read_text(location: str | Path) -> str:
    if isinstance(location, str) and location.startswith(("https://", "http://")):
        with urllib.request.urlopen(location, timeout=120) as response:
            return response.read().decode()
    return Path(location).read_text()


def parse_spot_json(text: str, regions: list[str], source_url: str, today: datetime.date) -> Result:
    """ec2-spot rows (Linux) for `regions` from the Spot pricing page's JSON."""
    result = Result()
    body = text.strip()
    if body.startswith("callback("):
        body = body.removeprefix("callback(").rstrip(";").strip().removesuffix(")")
    try:
        data = json.loads(body)
    except ValueError as e:
        result.warnings.append(f"spot prices: {source_url} is not JSON: {e}")
        return result
    config = data.get("config", {}) if isinstance(data, dict) else {}
    if config.get("rate", "perhr") != "perhr":
        result.warnings.append(f"spot prices: rate {config.get('rate')!r} is not per hour, skipped")
        return result
    found: dict[tuple[str, str], set[Decimal]] = {}
    for entry in config.get("regions", []):
        name = entry.get("region", "")
        region = SPOT_REGION_NAMES.get(name, name)
        if region not in regions:
            continue
        for family in entry.get("instanceTypes", []):
            for size in family.get("sizes", []):
                itype = size.get("size", "")
                linux = [c for c in size.get("valueColumns", []) if c.get("name") == "linux"]
                usd = _decimal(linux[0].get("prices", {}).get("USD")) if linux else None
                if not re.fullmatch(r"[a-z0-9-]+\.[a-z0-9-]+", itype) or usd is None or usd <= 0:
                    continue
                found.setdefault((region, itype), set()).add(usd)
    for (region, itype), prices in sorted(found.items()):
        if len(prices) > 1:
            result.warnings.append(f"spot prices {region} {itype}: {len(prices)} different prices, skipped")
            continue
        usd = prices.pop()
        result.rows.append(PriceRow(
            "aws", "ec2-spot", region, itype, float(usd), "hour",
            f"{source_url}: config.regions[region={region}] size={itype} valueColumns[name=linux].prices.USD "
            f"{usd} (one price for the region; the feed gives no per-zone values)", today.isoformat()))
    return result


def refresh_spot(location: str | Path, regions: list[str], today: datetime.date) -> Result:
    """`location`: SPOT_URL, or a recorded copy of it (cited by SPOT_URL)."""
    try:
        text = read_text(location)
    except (OSError, ValueError) as e:
        return Result(warnings=[f"spot prices: cannot read {location}: {e}"])
    return parse_spot_json(text, regions, SPOT_URL, today)


# ---------------------------------------------------------------- GCP


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
        result.rows.append(PriceRow("gcp", target, region, name, float(usd), GCP_UNITS[unit],
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
                "gcp", target, region, shape.machine, float(usd), "hour",
                f"{skus_url}: {shape.vcpus} vCPU x {cite(core[0], *core[1])} + {shape.memory_gib} GiB x "
                f"{cite(ram[0], *ram[1])} = ${usd} (shape: gcp_machines.csv; GPUs are separate SKUs)", as_of))
    return result


def gcp_service_ids(fetch: Fetch) -> dict[str, str]:
    """Display name -> service id (e.g. "Compute Engine" -> "6F81-5844-456A")."""
    return {s.get("displayName", ""): s.get("serviceId", "") for s in gcp_pages(fetch, "v1/services", "services")}


# ---------------------------------------------------------------- the whole refresh


def split_regions(regions: list[str]) -> tuple[list[str], list[str]]:
    return ([r for r in regions if AWS_REGION.fullmatch(r)], [r for r in regions if GCP_REGION.fullmatch(r)])


def refresh_aws(offers: str, regions: list[str]) -> Result:
    """`offers`: the bulk API base URL, or a directory laid out like it (offers/v1.0/aws/...)."""
    result = Result()
    is_url = offers.startswith(("https://", "http://"))
    for offer in sorted({r.offer for r in AWS_RULES}):
        for region in regions:
            # A local copy is cited by the official URL it mirrors.
            url = aws_offer_url(offer, region, offers if is_url else AWS_BASE)
            location: str | Path = url if is_url else Path(offers) / url.removeprefix(AWS_BASE + "/")
            try:
                data = read_json(location)
            except (OSError, ValueError) as e:
                result.warnings.append(f"{offer} {region}: cannot read {location}: {e}")
                continue
            parsed = parse_aws_offer(data, region, url)
            result.rows += parsed.rows
            result.warnings += parsed.warnings
    return result


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


def merge_and_write(rows: list[PriceRow], out: Path) -> dict[str, int]:
    """Refreshed rows replace rows of the same key; rows the sources did not cover are kept as they were."""
    for row in rows:
        check_row(row)
    merged = {**load(out), **{r.key: r for r in rows}}
    counts = {}
    for provider in FILES:
        provider_rows = [r for r in merged.values() if r.provider == provider]
        if provider_rows:
            write_rows(out / f"{provider}.csv", provider_rows)
        counts[provider] = len(provider_rows)
    return counts
