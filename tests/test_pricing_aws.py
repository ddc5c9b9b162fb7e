"""AWS price coverage of what the catalogs accept, derived rows against their stated figures, and the refresh of
ELB, EBS and EC2 Spot prices against recorded official formats (tests/data/pricing/aws/more)."""

import datetime
import json
import re
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.catalog import pricing
from components.catalog.ec2_instances import ec2_instances_in
from components.catalog.pricing import lookup, table, write_rows
from components.catalog.pricing.refresh import (
    SPOT_URL,
    parse_aws_offer,
    parse_spot_json,
    refresh_aws,
    refresh_spot,
)
from components.catalog.sagemaker_instances import UNSUPPORTED_FAMILIES, family_of, instances_in
from selfhost.prices import app

MORE = Path(__file__).parent / "data" / "pricing" / "aws" / "more"
OFFER = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/{}/current/us-east-1/index.json"
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
TODAY = datetime.date(2026, 12, 2)

# Types a catalog accepts that no source prices, and why. A new gap fails the test; a filled one must leave the list.
# g5n.xlarge: in the sagemaker package's table, but EC2 has no such type (no price, no ratio to derive one from).
# p5e.48xlarge: SkyPilot's catalog v9 has no on-demand price for it anywhere (spot only, us-west-2).
# eu-west-1 g6/g6e/p4de/p5/p5e: the catalog's SUPPLEMENT lists them in eu-west-1, but EC2 does not offer them there
# (no eu-west-1 row in catalogs/v9/aws/vms.csv); the supplement is likely wrong for that region.
_EU_ONLY = {*(f"g6.{s}" for s in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
                                  "48xlarge")),
            *(f"g6e.{s}" for s in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
                                   "48xlarge")),
            "p4de.24xlarge", "p5.48xlarge"}
EC2_GAPS = {"us-east-1": {"g5n.xlarge", "p5e.48xlarge"}, "us-west-2": {"g5n.xlarge", "p5e.48xlarge"},
            "eu-west-1": {"g5n.xlarge", "p5e.48xlarge", *_EU_ONLY}}
SPOT_GAPS = {"us-east-1": {"g5n.xlarge", "p5e.48xlarge"}, "us-west-2": {"g5n.xlarge"},
             "eu-west-1": {"g5n.xlarge", "p5e.48xlarge", *_EU_ONLY}}
SAGEMAKER_GAPS = {region: {f"ml.{t}" for t in gaps} for region, gaps in EC2_GAPS.items()}


def missing(service: str, region: str, types: list[str]) -> set[str]:
    return {t for t in types if family_of(t) not in UNSUPPORTED_FAMILIES and lookup("aws", service, region, t) is None}


@pytest.mark.parametrize("region", REGIONS)
def test_every_accepted_type_is_priced_or_a_known_gap(region: str):
    assert missing("sagemaker-hosting", region, list(instances_in(region))) == SAGEMAKER_GAPS[region]
    assert missing("ec2", region, list(ec2_instances_in(region))) == EC2_GAPS[region]
    assert missing("ec2-spot", region, list(ec2_instances_in(region))) == SPOT_GAPS[region]


@pytest.mark.parametrize("region", REGIONS)
def test_rows_carry_a_source_and_a_date(region: str):
    for row in table():
        if row.provider == "aws" and row.region == region:
            assert row.source.strip() and datetime.date.fromisoformat(row.as_of) <= datetime.date.today(), row.key


def test_network_rows():
    for region in ("us-east-1", "us-west-2"):
        assert lookup("aws", "elb", region, "application-lb-hour").usd == 0.0225
        assert lookup("aws", "elb", region, "application-lb-lcu-hour").usd == 0.008
        assert lookup("aws", "ebs", region, "gp3").unit == "GB-month"
    assert lookup("aws", "elb", "eu-west-1", "application-lb-hour").usd == 0.0252
    # No offline source gave these: unknown, not 0.
    assert lookup("aws", "elb", "eu-west-1", "application-lb-lcu-hour") is None
    assert lookup("aws", "ebs", "eu-west-1", "gp3") is None


# ---------------------------------------------------------------- derived rows

DERIVED_EC2 = re.compile(r"^derived: EC2 on-demand (\S+) in (\S+) ([0-9.]+) \(.*?\) x ([0-9.]+) = ([0-9.]+);")
PAIR = re.compile(r"ml\.\S+ ([0-9.]+)/([0-9.]+)=([0-9.]+)")


def test_derived_rows_are_marked_and_match_their_formula():
    derived = [r for r in table() if r.provider == "aws" and r.confidence != "list"]
    assert derived
    for r in derived:
        assert r.source.startswith(pricing.DERIVED) and r.confidence in ("medium", "low"), r.key
        match = DERIVED_EC2.match(r.source)
        if r.service != "sagemaker-hosting":
            assert r.confidence == "low", r.key  # a region-to-region copy, not a measured ratio
            continue
        assert match, r.key
        itype, region, ec2_usd, ratio, usd = match.groups()
        assert (f"ml.{itype}", region) == (r.sku, r.region)
        # The EC2 figure it names is the committed EC2 row; the result is that figure times the ratio (4 decimals).
        assert lookup("aws", "ec2", region, itype).usd == pytest.approx(float(ec2_usd), abs=1e-9), r.key
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
    assert float(DERIVED_EC2.match(row.source).group(4)) == pytest.approx(statistics.median(ratios), abs=5e-5)
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
        assert row.usd == lookup("aws", service, "us-east-1", sku).usd
        assert (row.unit, row.as_of) == ("hour", "2025-11-20")
        assert row.source == f"{OFFER.format('AWSELB')} (offer AWSELB, version 20251120190000)"


def test_ebs_gp3_storage_only():
    result = parse_aws_offer(offer("AmazonEC2"), "us-east-1", OFFER.format("AmazonEC2"))
    # gp2, gp3 IOPS (another unit and family), the Boston Local Zone and the us-west-2 product are skipped.
    assert [(r.service, r.sku, r.usd, r.unit) for r in result.rows] == [("ebs", "gp3", 0.08, "GB-month")]
    assert lookup("aws", "ebs", "us-east-1", "gp3").usd == 0.08


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
