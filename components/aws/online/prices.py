"""AWS list prices for `selfhost prices refresh` (through the platform, components/targets/aws.py): the AWS Price
List bulk API and the EC2 Spot pricing page's JSON, both public (no credentials).

AWS Price List bulk API: one offer file per service and region,
`{base}/offers/v1.0/aws/{offer}/current/{region}/index.json`. `products` maps a product sku to its attributes
(usagetype such as `USE1-Host:ml.g5.xlarge`, instanceType, operatingSystem, tenancy, ...); `terms.OnDemand` maps
the same sku to offer terms whose priceDimensions carry `unit` and `pricePerUnit.USD`.

Both sources are read from a URL or from a directory holding files in the same layout (recorded responses; the
network may be out of reach). Which entries become which rows is the rule table below. An entry no rule matches,
whose unit is not the expected one, or whose price is missing, zero or unparseable is skipped: a missing row reads
as "unknown", a wrong one as a real price. A tiered price takes the first tier with a non-zero rate (a free
allowance is not the rate).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ...catalog.pricing import PriceRow
from ...catalog.pricing.refresh import Json, Result, is_url, read_json, read_text

PROVIDER = "aws"
AWS_BASE = "https://pricing.us-east-1.amazonaws.com"

# AWS usage types carry a region prefix (USE1-, USW2-, EU-), except some us-east-1 ones.
_PREFIX = r"(?:[A-Z0-9]+-)?"


def refresh(regions: Sequence[str], options: Mapping[str, Any]) -> list[Result]:
    """The Price List's rows for `regions`, and EC2 Spot's. `options`: `aws_offers` (the bulk API base URL, or a
    directory laid out like it; default AWS_BASE), `aws_spot` (SPOT_URL or a recorded copy, `none` to skip;
    default SPOT_URL with an offers URL, DIR/spot.json with a directory), `today` (the Spot rows' as-of)."""
    regions = list(regions)
    if not regions:
        return []
    today = options.get("today") or datetime.date.today()
    offers = str(options.get("aws_offers") or AWS_BASE)
    results = [refresh_aws(offers, regions)]
    spot = options.get("aws_spot")
    if spot != "none":
        spot = str(spot or (SPOT_URL if is_url(offers) else Path(offers) / "spot.json"))
        if is_url(spot) or Path(spot).exists():
            results.append(refresh_spot(spot, regions, today))
        else:
            results.append(Result(warnings=[f"EC2 Spot skipped: no {spot} (give --aws-spot)."]))
    return results


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


def aws_offer_url(offer: str, region: str, base: str = AWS_BASE) -> str:
    return f"{base.rstrip('/')}/offers/v1.0/aws/{offer}/current/{region}/index.json"


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
        result.rows.append(PriceRow(PROVIDER, service, region, sku, float(prices.pop()), units[(service, sku)],
                                    source, as_of))
    return result


# ---------------------------------------------------------------- EC2 Spot

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
            PROVIDER, "ec2-spot", region, itype, float(usd), "hour",
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


def refresh_aws(offers: str, regions: list[str]) -> Result:
    """`offers`: the bulk API base URL, or a directory laid out like it (offers/v1.0/aws/...)."""
    result = Result()
    remote = is_url(offers)
    for offer in sorted({r.offer for r in AWS_RULES}):
        for region in regions:
            # A local copy is cited by the official URL it mirrors.
            url = aws_offer_url(offer, region, offers if remote else AWS_BASE)
            location: str | Path = url if remote else Path(offers) / url.removeprefix(AWS_BASE + "/")
            try:
                data = read_json(location)
            except (OSError, ValueError) as e:
                result.warnings.append(f"{offer} {region}: cannot read {location}: {e}")
                continue
            parsed = parse_aws_offer(data, region, url)
            result.rows += parsed.rows
            result.warnings += parsed.warnings
    return result
