"""AWS price coverage of what the catalogs accept, derived rows against their stated figures, and the refresh of
ELB, EBS and EC2 Spot prices against recorded official formats (tests/data/pricing/aws/more)."""

import datetime
import json
import re
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.aws.online.prices import (
    SPOT_URL,
    parse_aws_offer,
    parse_spot_json,
    refresh_aws,
    refresh_spot,
)
from components.catalog import pricing
from components.catalog.ec2_instances import ec2_instances_in
from components.catalog.pricing import lookup, table, write_rows
from components.catalog.sagemaker_instances import UNSUPPORTED_FAMILIES, family_of, instances_in
from selfhost.prices import app

MORE = Path(__file__).parent / "data" / "pricing" / "aws" / "more"
OFFER = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/{}/current/us-east-1/index.json"
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
TODAY = datetime.date(2026, 12, 2)

# Types a catalog accepts that no source prices, and why. A new gap fails the test; a filled one must leave the list.
# None remain: ml.g5n.xlarge (no such type) and ml.p5e.48xlarge (Capacity Blocks only, no on-demand price) are no
# longer accepted, nor g6/g6e/p4de/p5 in eu-west-1 where EC2 does not offer them (sagemaker_instances.py says why).
KNOWN_GAPS: dict[tuple[str, str], set[str]] = {}
NETWORK_KEYS = [  # what the AWS cost rules look up (components/targets/*.py)
    ("nat-gateway", "hour"), ("nat-gateway", "data"), ("vpc-endpoint", "interface-az-hour"), ("public-ipv4", "hour"),
    ("s3", "standard"), ("kms", "key"), ("secretsmanager", "secret"), ("cloudwatch", "alarm"),
    ("cloudwatch", "dashboard"), ("elb", "application-lb-hour"), ("elb", "application-lb-lcu-hour"), ("ebs", "gp3"),
    ("fargate", "linux-x86-vcpu-hour"), ("fargate", "linux-x86-gb-hour")]


def price(*key: str) -> pricing.Price:
    found = lookup("aws", *key)
    assert found is not None, key
    return found


def missing(service: str, region: str, types: list[str]) -> set[str]:
    return {t for t in types if family_of(t) not in UNSUPPORTED_FAMILIES and lookup("aws", service, region, t) is None}


@pytest.mark.parametrize("region", REGIONS)
def test_every_accepted_type_is_priced_or_a_known_gap(region: str):
    assert len(instances_in(region)) >= 19 and len(ec2_instances_in(region)) >= 19
    for service, types in (("sagemaker-hosting", instances_in(region)), ("ec2", ec2_instances_in(region)),
                           ("ec2-spot", ec2_instances_in(region))):
        assert missing(service, region, list(types)) == KNOWN_GAPS.get((service, region), set()), (service, region)


def test_types_that_cannot_be_had_are_not_accepted():
    for region in REGIONS:
        accepted = set(instances_in(region))
        assert "ml.g5n.xlarge" not in accepted and "ml.p5e.48xlarge" not in accepted, region
        assert "ml.g5.xlarge" in accepted, region  # what the package's g5n entry stood for
    eu = set(instances_in("eu-west-1"))
    assert not {t for t in eu if family_of(t) in ("g6", "g6e", "p4de", "p5")}
    assert {"ml.g5.xlarge", "ml.p4d.24xlarge", "ml.g4dn.xlarge"} <= eu
    assert {"ml.g6.xlarge", "ml.p5.48xlarge", "ml.p4de.24xlarge"} <= set(instances_in("us-west-2"))


@pytest.mark.parametrize("region", REGIONS)
def test_network_rows_the_cost_rules_look_up(region: str):
    for service, sku in NETWORK_KEYS:
        found = price(service, region, sku)
        assert found.usd > 0 and found.source.strip(), (service, region, sku)


@pytest.mark.parametrize("region", REGIONS)
def test_rows_carry_a_source_and_a_date(region: str):
    for row in table():
        if row.provider == "aws" and row.region == region:
            assert row.source.strip() and datetime.date.fromisoformat(row.as_of) <= datetime.date.today(), row.key


def test_network_rows():
    for region in ("us-east-1", "us-west-2"):
        assert price("elb", region, "application-lb-hour").usd == 0.0225
        assert price("elb", region, "application-lb-lcu-hour").usd == 0.008
        assert price("ebs", region, "gp3").unit == "GB-month"
        assert price("nat-gateway", region, "hour").usd == 0.045
    assert price("elb", "eu-west-1", "application-lb-hour").usd == 0.0252
    # eu-west-1 figures quoted from the Price List (medium) or from hand-kept tables (low), never list.
    for sku, usd, unit in (("hour", 0.048, "hour"), ("data", 0.048, "GB")):
        nat = price("nat-gateway", "eu-west-1", sku)
        assert (nat.usd, nat.unit, nat.confidence) == (usd, unit, "medium") and "EU-NatGateway-" in nat.source
    lcu = price("elb", "eu-west-1", "application-lb-lcu-hour")
    assert (lcu.usd, lcu.confidence) == (0.008, "medium") and "EU-LCUUsage" in lcu.source
    gp3 = price("ebs", "eu-west-1", "gp3")
    assert (gp3.usd, gp3.unit, gp3.confidence) == (0.088, "GB-month", "low")
    assert price("vpc-endpoint", "eu-west-1", "interface-az-hour").usd == 0.011
    # KMS is read from the pricing page, one price everywhere.
    for region in ("us-west-2", "eu-west-1"):
        kms = price("kms", region, "key")
        assert (kms.usd, kms.confidence) == (1.0, "list") and kms.source.startswith("https://aws.amazon.com/kms/pricing/")


def test_fargate_rows_match_the_figures_they_cite():
    """Fargate Linux/x86 in us-east-1 is read off infracost's golden output: quantity x 730 h x price, rounded to
    cents as the golden prints it; the other regions copy it (derived, low confidence) and say so."""
    for sku, quantity in (("linux-x86-vcpu-hour", 2), ("linux-x86-gb-hour", 4)):
        row = price("fargate", "us-east-1", sku)
        quoted = re.search(r"\$(\d+\.\d\d)'", row.source)
        assert quoted, row.source
        assert round(quantity * 730 * row.usd, 2) == float(quoted[1]) and row.confidence == "list", sku
        for region in ("us-west-2", "eu-west-1"):
            other = price("fargate", region, sku)
            assert other.usd == row.usd and other.confidence == "low" and other.source.startswith("derived:")


# ---------------------------------------------------------------- derived rows

DERIVED_EC2 = re.compile(r"^derived: EC2 on-demand (\S+) in (\S+) ([0-9.]+) \(.*?\) x ([0-9.]+) = ([0-9.]+);")
COPY = re.compile(r"^derived: (\S+) = us-east-1 (\S+) ([0-9.]+) \(.*?\) x 1\.0[,;]")
PAIR = re.compile(r"ml\.\S+ ([0-9.]+)/([0-9.]+)=([0-9.]+)")


def test_derived_rows_are_marked_and_match_their_formula():
    derived = [r for r in table() if r.provider == "aws" and r.confidence != "list"]
    assert derived
    for r in derived:
        assert r.source.startswith(pricing.DERIVED) and r.confidence in ("medium", "low"), r.key
        match = DERIVED_EC2.match(r.source)
        if r.service != "sagemaker-hosting":
            copy = COPY.match(r.source)
            if copy:  # a region-to-region copy, not a measured ratio: the figure it names is the us-east-1 row
                assert r.confidence == "low", r.key
                assert (copy[1], copy[2]) == (r.region, f"{r.service}/{r.sku}"), r.key
                assert price(r.service, "us-east-1", r.sku).usd == float(copy[3]) == r.usd, r.key
            else:  # a figure quoted second-hand for the region itself
                assert r.source.startswith("derived: not read first-hand;") and r.region == "eu-west-1", r.key
                assert r.confidence in ("medium", "low") and f"{r.usd}" in r.source.replace("$", ""), r.key
            continue
        assert match, r.key
        itype, region, ec2_usd, ratio, usd = match.groups()
        assert (f"ml.{itype}", region) == (r.sku, r.region)
        # The EC2 figure it names is the committed EC2 row; the result is that figure times the ratio (4 decimals).
        assert price("ec2", region, itype).usd == pytest.approx(float(ec2_usd), abs=1e-9), r.key
        assert r.usd == pytest.approx(float(usd), abs=1e-9)
        assert r.usd == pytest.approx(float(ec2_usd) * float(ratio), rel=1e-4), r.key
        if r.region == "eu-west-1" or itype.startswith(("p4", "p5")):
            assert r.confidence == "low", r.key


def test_the_ratio_is_the_median_of_the_pairs_it_lists():
    row = next(r for r in table() if r.key == ("aws", "sagemaker-hosting", "us-east-1", "ml.g4dn.xlarge"))
    pairs = [(float(a), float(b), float(q)) for a, b, q in PAIR.findall(row.source)]
    assert len(pairs) == 12
    for sagemaker, ec2, quoted in pairs:
        assert sagemaker / ec2 == pytest.approx(quoted, abs=5e-5)
        # Each pair's SageMaker figure is the committed list row, or the earlier row of the same value.
    ratios = [s / e for s, e, _ in pairs]
    head = DERIVED_EC2.match(row.source)
    assert head is not None
    assert float(head.group(4)) == pytest.approx(statistics.median(ratios), abs=5e-5)
    lists = {r.sku: r.usd for r in table() if r.service == "sagemaker-hosting" and r.region == "us-east-1"
             and r.confidence == "list"}
    assert {round(s, 6) for s, _, _ in pairs} <= {round(u, 6) for u in lists.values()}


def test_list_rows_are_not_derived():
    for r in table():
        if r.provider == "aws" and r.confidence == "list":
            assert not r.source.startswith(pricing.DERIVED), r.key


# ---------------------------------------------------------------- refresh: ELB and EBS offers


def offer(name: str) -> dict:
    return json.loads((MORE / f"offers/v1.0/aws/{name}/current/us-east-1/index.json").read_text())


def test_elb_offer_application_load_balancer_only():
    result = parse_aws_offer(offer("AWSELB"), "us-east-1", OFFER.format("AWSELB"))
    rows = {(r.service, r.sku): r for r in result.rows}
    # Network and Classic products share the usagetypes: productFamily keeps them out; so are reserved LCUs and
    # the us-west-2 product.
    assert set(rows) == {("elb", "application-lb-hour"), ("elb", "application-lb-lcu-hour")}
    assert not result.warnings
    for (service, sku), row in rows.items():
        # The recorded file carries the list prices of the committed rows: the refresh rebuilds them.
        assert row.usd == price(service, "us-east-1", sku).usd
        assert (row.unit, row.as_of) == ("hour", "2025-11-20")
        assert row.source == f"{OFFER.format('AWSELB')} (offer AWSELB, version 20251120190000)"


def test_ebs_gp3_storage_only():
    result = parse_aws_offer(offer("AmazonEC2"), "us-east-1", OFFER.format("AmazonEC2"))
    # gp2, gp3 IOPS (another unit and family), the Boston Local Zone and the us-west-2 product are skipped.
    assert [(r.service, r.sku, r.usd, r.unit) for r in result.rows] == [("ebs", "gp3", 0.08, "GB-month")]
    assert price("ebs", "us-east-1", "gp3").usd == 0.08


def test_refresh_aws_reads_elb_and_ebs_from_the_layout():
    result = refresh_aws(str(MORE), ["us-east-1"])
    assert {(r.service, r.sku) for r in result.rows} == {
        ("elb", "application-lb-hour"), ("elb", "application-lb-lcu-hour"), ("ebs", "gp3")}
    assert any("AmazonSageMaker us-east-1: cannot read" in w for w in result.warnings)


# ---------------------------------------------------------------- refresh: EC2 Spot


def test_spot_json_linux_prices_per_region():
    result = refresh_spot(MORE / "spot.json", ["us-east-1", "eu-west-1"], TODAY)
    rows = {(r.region, r.sku): r for r in result.rows}
    # The JSONP wrapper is stripped; 'eu-ireland' is eu-west-1; N/A* and 0 are skipped, never 0; Windows prices
    # and regions not asked for are left out.
    assert {k: r.usd for k, r in rows.items()} == {
        ("us-east-1", "g5.xlarge"): 0.4321, ("us-east-1", "g6e.xlarge"): 0.8765, ("us-east-1", "m6i.xlarge"): 0.0615,
        ("eu-west-1", "g5.xlarge"): 0.5555}
    g5 = rows[("us-east-1", "g5.xlarge")]
    assert (g5.service, g5.unit, g5.as_of, g5.confidence) == ("ec2-spot", "hour", "2026-12-02", "list")
    assert g5.source.startswith(SPOT_URL + ": config.regions[region=us-east-1] size=g5.xlarge")


def test_spot_json_plain_and_broken():
    text = (MORE / "spot.json").read_text().strip().removeprefix("callback(").removesuffix(");")
    plain = parse_spot_json(text, ["eu-west-1"], SPOT_URL, TODAY)
    assert [(r.region, r.sku, r.usd) for r in plain.rows] == [("eu-west-1", "g5.xlarge", 0.5555)]
    assert parse_spot_json("<html>moved</html>", ["us-east-1"], SPOT_URL, TODAY).rows == []
    assert parse_spot_json("<html>moved</html>", ["us-east-1"], SPOT_URL, TODAY).warnings
    daily = json.loads(text)
    daily["config"]["rate"] = "perday"
    assert parse_spot_json(json.dumps(daily), ["us-east-1"], SPOT_URL, TODAY).rows == []
    assert refresh_spot(MORE / "no-such.json", ["us-east-1"], TODAY).warnings


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"GCP_BILLING_API_KEY": ""})


def test_refresh_command_replaces_stale_spot_rows(tmp_path: Path):
    stale = pricing.PriceRow("aws", "ec2-spot", "us-east-1", "g5.xlarge", 0.9, "hour", "an earlier source",
                             "2026-01-01")
    write_rows(tmp_path / "aws.csv", [stale])
    result = run("refresh", "--aws-offers", str(MORE), "--regions", "us-east-1,eu-west-1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    merged = pricing.load(tmp_path)
    assert merged[stale.key].usd == 0.4321 and merged[stale.key].as_of == datetime.date.today().isoformat()
    assert merged[("aws", "ec2-spot", "eu-west-1", "g5.xlarge")].usd == 0.5555
    assert merged[("aws", "elb", "us-east-1", "application-lb-hour")].usd == 0.0225

    skipped = tmp_path / "skipped"
    result = run("refresh", "--aws-offers", str(MORE), "--aws-spot", "none", "--regions", "us-east-1",
                 "--out", str(skipped))
    assert result.exit_code == 0, result.output
    assert not any(k[1] == "ec2-spot" for k in pricing.load(skipped))
