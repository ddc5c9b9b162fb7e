"""The price table against its sources, and `selfhost prices refresh` against recorded official formats."""

import csv
import datetime
import json
import re
import statistics
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.aws.online.prices import SPOT_URL, parse_aws_offer, refresh_aws
from components.catalog import pricing
from components.catalog.gcp_machines import ACCELERATORS, FIXED_GPU_MACHINES
from components.catalog.pricing import DATA_DIR, PriceRow, lookup, read_rows, table, write_rows
from components.catalog.sagemaker_instances import instances_in
from components.gcp.online.prices import gcp_dir_fetch, gcp_pages, gcp_unit_price, read_machine_shapes, refresh_gcp
from selfhost.prices import app

SAMPLES = Path(__file__).parent / "data" / "pricing"
AWS_OFFERS = SAMPLES / "aws"
GCP_PAGES = SAMPLES / "gcp"
OFFER_URL = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/{}/current/us-east-1/index.json"
CE_SKUS = "https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus"
VERTEX_SKUS = "https://cloudbilling.googleapis.com/v1/services/C7E2-9256-1C43/skus"
N1 = [f"n1-{kind}-{n}" for kind in ("standard", "highmem") for n in (2, 4, 8, 16, 32, 64, 96)]  # all N1_MACHINE takes
TODAY = datetime.date(2026, 11, 29)  # the day the recorded responses stand for


def offer(name: str) -> dict:
    return json.loads((AWS_OFFERS / f"offers/v1.0/aws/{name}/current/us-east-1/index.json").read_text())


def by_key(rows: list[PriceRow]) -> dict[tuple[str, str, str], PriceRow]:
    return {(r.service, r.region, r.sku): r for r in rows}


# ---------------------------------------------------------------- the committed table


def test_every_row_is_sourced_dated_and_priced():
    rows = table()
    assert len(rows) == len({r.key for r in rows}) > 300
    for r in rows:
        assert r.unit in pricing.UNITS
        assert r.usd > 0, r.key  # no row says "free" today
        assert datetime.date.fromisoformat(r.as_of) <= datetime.date.today()  # never dated in the future
        # Re-checkable: a pinned commit (owner/repo@40-hex:path) or a URL.
        assert re.search(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}:\S+|https://\S+", r.source), r.key


def test_figures_read_by_hand():
    """Values checked by eye against the sources (the SkyPilot catalog v8 has the same figures)."""
    expected = {
        ("aws", "ec2", "us-east-1", "g5.xlarge"): 1.006,
        ("aws", "ec2", "us-east-1", "g6.xlarge"): 0.8048,
        ("aws", "ec2", "us-east-1", "g6e.xlarge"): 1.861,
        ("aws", "ec2", "us-east-1", "p4d.24xlarge"): 21.957642,
        ("aws", "ec2", "us-east-1", "p5.48xlarge"): 55.04,
        ("aws", "ec2", "us-east-1", "p5.4xlarge"): 6.88,
        ("gcp", "gce-gpu", "us-central1", "NVIDIA_TESLA_T4"): 0.35,
        ("gcp", "gce-gpu", "us-central1", "NVIDIA_L4"): 0.56004,
        ("gcp", "gce-gpu", "us-central1", "NVIDIA_TESLA_A100"): 2.93391,
        ("gcp", "vertex-prediction-gpu", "us-central1", "NVIDIA_H100_80GB"): 11.2660332,
        ("gcp", "vertex-prediction", "us-central1", "a3-highgpu-1g"): 0.7623902 + 0.5974956,
        ("aws", "nat-gateway", "us-east-1", "hour"): 0.045,
        ("aws", "vpc-endpoint", "us-east-1", "interface-az-hour"): 0.01,
        ("gcp", "cloud-dns", "us-central1", "zone"): 0.2,
    }
    for key, usd in expected.items():
        price = lookup(*key)
        assert price is not None and price.usd == pytest.approx(usd, abs=1e-9), key
    nat_data, s3 = lookup("aws", "nat-gateway", "us-east-1", "data"), lookup("aws", "s3", "us-east-1", "standard")
    assert nat_data is not None and nat_data.unit == "GB"
    assert s3 is not None and s3.unit == "GB-month"


def test_spot_is_the_median_of_the_zones_named_in_its_source():
    checked = 0
    for r in table():
        # A row refreshed from the Spot pricing page's JSON carries one price per region, no zones to take a median of.
        if r.service != "ec2-spot" or r.source.startswith(SPOT_URL):
            continue
        checked += 1
        zones = [float(v) for v in re.findall(r"az\d+=([0-9.]+)", r.source)]
        assert zones, r.key
        assert r.usd == pytest.approx(statistics.median(zones), abs=1e-9), r.key
    assert checked > 90


def test_unknown_is_none_never_zero():
    # SageMaker hosting: a list price from AWS's fmbench pricing table, not a guess.
    g5 = lookup("aws", "sagemaker-hosting", "us-east-1", "ml.g5.xlarge")
    assert g5 is not None and (g5.usd, g5.confidence) == (1.4084, "list")
    assert g5.source.startswith("aws-samples/foundation-model-benchmarking-tool@") and "pricing.yml" in g5.source
    assert lookup("aws", "ec2", "eu-west-1", "g6.xlarge") is None  # not offered there (nor accepted by the catalog)
    assert lookup("aws", "ec2", "us-east-1", "p5e.48xlarge") is None  # Capacity Blocks only, no on-demand price
    # Vertex L4: derived from the Compute Engine L4 (0.56004 x 1.15), and marked so.
    l4 = lookup("gcp", "vertex-prediction-gpu", "us-central1", "NVIDIA_L4")
    assert l4 is not None and l4.derived and l4.usd == pytest.approx(0.56004 * 1.15, abs=1e-9)
    h200 = lookup("gcp", "gce-gpu", "us-central1", "NVIDIA_H200_141GB")  # second-hand SKU copies: derived, not list
    assert h200 is not None and h200.derived
    assert lookup("gcp", "gce-gpu", "us-central1", "nvidia_l4") is None  # keys are exact
    assert lookup("azure", "vm", "eastus", "x") is None


def test_values_judged_wrong_in_the_source_stay_out():
    with (DATA_DIR / "excluded.csv").open(newline="") as f:
        excluded = list(csv.DictReader(f))
    assert excluded
    confirmed = 0
    for e in excluded:
        price = lookup(e["provider"], e["service"], e["region"], e["sku"])
        assert e["reason"].strip()
        # SkyPilot v8 gives some GPUs as an 8-GPU total: compare per GPU, as the table prices them.
        count = re.search(r"AcceleratorCount=(\d+) row \(price for \1 GPUs\)", e["reason"])
        per_gpu = float(e["value_seen"]) / (int(count[1]) if count else 1)
        if "later confirmed by" in e["reason"]:
            # Kept for the record: another source agreed afterwards, and the row comes from that source (named in
            # the reason), which quotes this value beside its own.
            assert price is not None and price.derived and price.usd == pytest.approx(per_gpu, rel=1e-5), e
            assert e["value_seen"] in price.source and "skypilot-org" not in price.source.split(";")[0], e
            confirmed += 1
        else:
            # Either unpriced, or priced by a derived row of its own that does not carry the value judged wrong.
            assert price is None or (price.derived and price.usd != pytest.approx(per_gpu, rel=0.01)), e
    assert confirmed == 3  # SkyPilot v8's 8-GPU H100 Mega (both regions) and us-central1 H200 totals


def test_coverage_of_what_the_stack_config_accepts():
    """Every EC2 type the catalog accepts is priced; the GCP GPUs without a price are pinned (tests/test_pricing_gcp.py
    says why)."""
    for region in ("us-east-1", "us-west-2", "eu-west-1"):
        ec2_types = {t.removeprefix("ml.") for t in instances_in(region)}
        assert ec2_types and {t for t in ec2_types if lookup("aws", "ec2", region, t) is None} == set(), region
    for region in ("us-central1", "europe-west4"):
        for machine in [*FIXED_GPU_MACHINES, *N1]:
            assert lookup("gcp", "gce-machine", region, machine) is not None, (region, machine)
        gpus = {a for a in ACCELERATORS if lookup("gcp", "gce-gpu", region, a)}
        assert gpus == set(ACCELERATORS), region
    h100 = lookup("gcp", "gce-gpu", "europe-west4", "NVIDIA_H100_80GB")  # the Cloud Billing extract: 1.30x us-central1
    assert h100 is not None and h100.confidence == "high" and h100.usd == pytest.approx(9.7965506 * 1.30, abs=1e-6)


def test_machine_shapes_cover_every_accepted_machine():
    shapes = {s.machine: s for s in read_machine_shapes()}
    assert set(shapes) == {*FIXED_GPU_MACHINES, *N1}
    assert (shapes["g2-standard-12"].vcpus, shapes["g2-standard-12"].memory_gib) == (12, Decimal(48))
    assert (shapes["a3-highgpu-8g"].vcpus, shapes["a3-highgpu-8g"].memory_gib) == (208, Decimal(1872))
    assert (shapes["n1-highmem-96"].vcpus, shapes["n1-highmem-96"].memory_gib) == (96, Decimal(624))


def test_rows_are_checked_when_read(tmp_path: Path):
    path = tmp_path / "aws.csv"
    good = PriceRow("aws", "ec2", "us-east-1", "x.large", 1.5, "hour", "somewhere", "2026-01-01")
    write_rows(path, [good])
    assert read_rows(path) == [good]
    included = PriceRow("gcp", "vertex-prediction-gpu", "r", "G", 0.0, "hour", "GPU included in the machine price",
                        "2026-01-01")
    write_rows(path, [included])
    assert read_rows(path)[0].usd == 0
    for bad in (PriceRow("aws", "ec2", "r", "s", 0.0, "hour", "somewhere", "2026-01-01"),
                PriceRow("aws", "ec2", "r", "s", 1.0, "day", "somewhere", "2026-01-01"),
                PriceRow("aws", "ec2", "r", "s", 1.0, "hour", " ", "2026-01-01"),
                PriceRow("aws", "ec2", "r", "s", 1.0, "hour", "somewhere", "last week")):
        write_rows(path, [bad])
        with pytest.raises(ValueError):
            read_rows(path)
    twice = tmp_path / "twice"
    write_rows(twice / "aws.csv", [good])
    write_rows(twice / "gcp.csv", [])
    text = (twice / "aws.csv").read_text()
    (twice / "aws.csv").write_text(text + text.splitlines()[1] + "\n")  # the same key twice
    with pytest.raises(ValueError, match="duplicate"):
        pricing.load(twice)


def test_write_keeps_every_digit(tmp_path: Path):
    row = PriceRow("aws", "ec2", "us-east-1", "p4d.24xlarge", 21.957642, "hour", "s", "2026-01-01")
    write_rows(tmp_path / "aws.csv", [row])
    assert read_rows(tmp_path / "aws.csv")[0].usd == 21.957642


# ---------------------------------------------------------------- refresh: AWS Price List


def test_sagemaker_offer_hosting_only():
    result = parse_aws_offer(offer("AmazonSageMaker"), "us-east-1", OFFER_URL.format("AmazonSageMaker"))
    rows = by_key(result.rows)
    # Batch transform, async inference, N/A and 0 prices, a product with no on-demand term and a us-west-2
    # product inside the file are all skipped.
    assert set(rows) == {("sagemaker-hosting", "us-east-1", "ml.g5.xlarge"),
                         ("sagemaker-hosting", "us-east-1", "ml.g6.xlarge")}
    g5 = rows[("sagemaker-hosting", "us-east-1", "ml.g5.xlarge")]
    assert (g5.usd, g5.unit, g5.as_of) == (1.234, "hour", "2025-11-18")
    assert g5.source.startswith(OFFER_URL.format("AmazonSageMaker")) and "version 20251118200456" in g5.source
    assert rows[("sagemaker-hosting", "us-east-1", "ml.g6.xlarge")].usd == 2.345
    assert {w.split(": ")[0] for w in result.warnings} == {
        f"AmazonSageMaker us-east-1 USE1-Host:{t}" for t in ("ml.p4d.24xlarge", "ml.g5.2xlarge", "ml.g6e.xlarge")}


def test_ec2_offer_linux_shared_on_demand_and_nat():
    result = parse_aws_offer(offer("AmazonEC2"), "us-east-1", OFFER_URL.format("AmazonEC2"))
    rows = by_key(result.rows)
    # Windows, SQL Server, dedicated and capacity-reservation products of g5.xlarge are not the Linux price;
    # the Reserved term of g6.xlarge is not on-demand; p5.48xlarge's unit is not hours.
    assert {k: r.usd for k, r in rows.items()} == {
        ("ec2", "us-east-1", "g5.xlarge"): 1.111,
        ("ec2", "us-east-1", "g6.xlarge"): 0.999,
        ("nat-gateway", "us-east-1", "hour"): 0.051,
        ("nat-gateway", "us-east-1", "data"): 0.052,
    }
    assert rows[("nat-gateway", "us-east-1", "data")].unit == "GB"
    assert {r.as_of for r in rows.values()} == {"2025-11-20"}


def test_ec2_offer_two_prices_for_one_key_is_skipped_not_guessed():
    data = offer("AmazonEC2")
    sql = next(p for p in data["products"].values() if p["attributes"]["preInstalledSw"] == "SQL Std")
    sql["attributes"]["preInstalledSw"] = "NA"  # now two "Linux" g5.xlarge products, 1.111 and 1.777
    result = parse_aws_offer(data, "us-east-1", OFFER_URL.format("AmazonEC2"))
    assert ("ec2", "us-east-1", "g5.xlarge") not in by_key(result.rows)
    assert any("g5.xlarge: 2 different prices" in w for w in result.warnings)


def test_vpc_offer_first_tier_and_units():
    rows = by_key(parse_aws_offer(offer("AmazonVPC"), "us-east-1", OFFER_URL.format("AmazonVPC")).rows)
    assert rows[("vpc-endpoint", "us-east-1", "data")].usd == 0.014  # the 0-1 PB tier, listed second
    assert (rows[("vpc-endpoint", "us-east-1", "interface-az-hour")].usd,
            rows[("vpc-endpoint", "us-east-1", "interface-az-hour")].unit) == (0.013, "hour")
    assert rows[("public-ipv4", "us-east-1", "hour")].usd == 0.006
    undated = offer("AmazonVPC")
    del undated["publicationDate"]  # no as-of date, no rows
    assert parse_aws_offer(undated, "us-east-1", OFFER_URL.format("AmazonVPC")).rows == []


def test_refresh_aws_reads_the_layout_and_reports_missing_files():
    result = refresh_aws(str(AWS_OFFERS), ["us-east-1", "us-west-2"])
    assert {r.service for r in result.rows} == {"sagemaker-hosting", "ec2", "nat-gateway", "vpc-endpoint",
                                                "public-ipv4"}
    assert {r.region for r in result.rows} == {"us-east-1"}
    assert any("AmazonSageMaker us-west-2: cannot read" in w for w in result.warnings)


# ---------------------------------------------------------------- refresh: GCP Cloud Billing Catalog


def test_gcp_pages_follow_next_page_token():
    fetch = gcp_dir_fetch(GCP_PAGES)
    assert [s["displayName"] for s in gcp_pages(fetch, "v1/services", "services")] == [
        "Cloud Storage", "Compute Engine", "Vertex AI"]
    skus = list(gcp_pages(fetch, "v1/services/6F81-5844-456A/skus", "skus"))
    assert len(skus) == 13 and skus[-1]["skuId"] == "A1B2-C3D4-0013"  # the last SKU of page 2


def test_gcp_unit_price_units_nanos_tiers_and_latest():
    def sku(tiers: list[tuple[float, str, int]], effective: str = "2025-01-01T00:00:00Z") -> dict:
        rates = [{"startUsageAmount": s, "unitPrice": {"currencyCode": "USD", "units": u, "nanos": n}}
                 for s, u, n in tiers]
        return {"pricingInfo": [{"effectiveTime": effective,
                                 "pricingExpression": {"usageUnit": "h", "tieredRates": rates}}]}

    assert gcp_unit_price(sku([(0, "2", 480000000)])) == (Decimal("2.48"), "h")
    tiered = gcp_unit_price(sku([(0, "0", 0), (730, "0", 15000000)]))
    assert tiered is not None and tiered[0] == Decimal("0.015")  # free tier first
    assert gcp_unit_price(sku([(0, "0", 0)])) is None
    assert gcp_unit_price({"pricingInfo": []}) is None
    newer = sku([(0, "0", 400000000)], "2025-06-01T00:00:00Z")
    newer["pricingInfo"].insert(0, sku([(0, "0", 350000000)])["pricingInfo"][0])
    latest = gcp_unit_price(newer)
    assert latest is not None and latest[0] == Decimal("0.4")


def test_refresh_gcp_gpus_and_machines_from_their_skus():
    result = refresh_gcp(gcp_dir_fetch(GCP_PAGES), ["us-central1", "europe-west4"], TODAY)
    rows = by_key(result.rows)
    assert rows[("gce-gpu", "us-central1", "NVIDIA_L4")].usd == 0.6
    assert rows[("gce-gpu", "us-central1", "NVIDIA_TESLA_V100")].usd == 2.48  # units "2" + 480000000 nanos
    assert rows[("gce-gpu-spot", "us-central1", "NVIDIA_L4")].usd == 0.25
    assert rows[("gce-gpu", "europe-west4", "NVIDIA_TESLA_T4")].usd == 0.4  # the later of two pricingInfo
    # Commitment, workstation and unknown-GPU SKUs, and the A100 priced 0, give no row.
    assert {k for k in rows if k[0].endswith("gpu") or k[0].endswith("gpu-spot")} == {
        ("gce-gpu", "us-central1", "NVIDIA_L4"), ("gce-gpu", "us-central1", "NVIDIA_TESLA_V100"),
        ("gce-gpu-spot", "us-central1", "NVIDIA_L4"), ("gce-gpu", "europe-west4", "NVIDIA_TESLA_T4"),
        ("vertex-prediction-gpu", "us-central1", "NVIDIA_H100_80GB")}
    # A machine is vCPUs x Core + GiB x Ram of its family: g2-standard-12 = 12 x 0.025 + 48 x 0.003.
    assert rows[("gce-machine", "us-central1", "g2-standard-12")].usd == pytest.approx(0.444)
    # N1 Core's first tier is free, the rate is the next one (0.03): 4 x 0.03 + 15 x 0.004.
    assert rows[("gce-machine", "us-central1", "n1-standard-4")].usd == pytest.approx(0.18)
    machines = {k[2] for k in rows if k[0] == "gce-machine"}
    assert machines == {m for m in [*FIXED_GPU_MACHINES, *N1] if m.startswith(("g2-", "n1-"))}
    # Spot Core without Spot Ram: no spot machine price rather than half of one.
    assert not any(k[0] == "gce-machine-spot" for k in rows)
    assert not any(k[1] == "europe-west4" and k[0] == "gce-machine" for k in rows)


def test_refresh_gcp_vertex_matches_the_committed_rows():
    """The Vertex sample SKUs carry the real ids and prices: the refresh must rebuild the committed values."""
    rows = by_key(refresh_gcp(gcp_dir_fetch(GCP_PAGES), ["us-central1"], TODAY).rows)
    vertex = {k: r for k, r in rows.items() if k[0].startswith("vertex")}
    assert len(vertex) == 5  # four a3-highgpu shapes and the H100
    for (service, region, sku), row in vertex.items():
        committed = lookup("gcp", service, region, sku)
        assert committed is not None and row.usd == pytest.approx(committed.usd, abs=1e-12)
        assert row.source.startswith(VERTEX_SKUS + ": ") and row.as_of == "2026-11-29"
    assert "SKU A002-4323-D900" in vertex[("vertex-prediction", "us-central1", "a3-highgpu-1g")].source
    assert rows[("gce-gpu", "us-central1", "NVIDIA_L4")].source == (
        f"{CE_SKUS}: SKU A1B2-C3D4-0001 'Nvidia L4 GPU running in Americas' $0.6/h")


# ---------------------------------------------------------------- the command


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"GCP_BILLING_API_KEY": ""})


def test_refresh_command_merges_into_the_price_files(tmp_path: Path):
    kept = PriceRow("aws", "ec2-spot", "us-east-1", "g5.xlarge", 0.5, "hour", "an earlier source", "2026-01-01")
    stale = PriceRow("aws", "ec2", "us-east-1", "g5.xlarge", 9.0, "hour", "an earlier source", "2026-01-01")
    write_rows(tmp_path / "aws.csv", [kept, stale])
    result = run("refresh", "--aws-offers", str(AWS_OFFERS), "--gcp-skus", str(GCP_PAGES),
                 "--regions", "us-east-1,us-central1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    merged = pricing.load(tmp_path)
    assert merged[kept.key] == kept
    refreshed = merged[stale.key]
    assert (refreshed.usd, refreshed.as_of) == (1.111, "2025-11-20")
    assert refreshed.source.startswith(OFFER_URL.format("AmazonEC2"))
    assert merged[("gcp", "gce-gpu", "us-central1", "NVIDIA_L4")].as_of == datetime.date.today().isoformat()
    assert "sagemaker-hosting" in result.stdout


def test_refresh_command_without_any_source_writes_nothing(tmp_path: Path):
    result = run("refresh", "--regions", "us-central1", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "GCP skipped" in result.stderr
    assert not list(tmp_path.iterdir())


def test_refresh_regions_name_their_platforms():
    import typer

    from components.targets.registry import PLATFORMS
    from selfhost.prices import regions_by_platform

    assert regions_by_platform("us-east-1, gcp=asia-east1,us-central1,us-east-1", PLATFORMS) == {
        "aws": ["us-east-1"], "gcp": ["asia-east1", "us-central1"]}
    for bad, why in (("ap-south-1", "PLATFORM=ap-south-1"), ("oracle=us-ashburn-1", "no platform 'oracle'")):
        with pytest.raises(typer.BadParameter, match=re.escape(why)):
            regions_by_platform(bad, PLATFORMS)


def test_refresh_command_reads_a_platform_source_given_by_key(tmp_path: Path):
    result = run("refresh", "--source", f"aws_offers={AWS_OFFERS}", "--source", "aws_spot=none",
                 "--regions", "aws=us-east-1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert {k[0] for k in pricing.load(tmp_path)} == {"aws"}  # only the platform named
    assert run("refresh", "--source", "no-equals-sign").exit_code == 2


def test_list_command_filters():
    result = run("list", "--provider", "gcp", "--service", "vertex-prediction-gpu")
    assert result.exit_code == 0, result.output
    assert "NVIDIA_H100_80GB" in result.stdout and "11.2660332" in result.stdout
    # us-central1: H100 (list), L4, T4, V100, A100, A100 80GB, H100 Mega (derived); europe-west4: L4, T4, V100, A100,
    # A100 80GB, H100 (derived)
    assert "13 rows" in result.stdout
    result = run("list", "--provider", "aws", "--region", "eu-west-1", "--service", "ec2")
    assert "g5.xlarge" in result.stdout and "us-east-1" not in result.stdout
    assert run("list", "--service", "no-such-service").exit_code == 1
