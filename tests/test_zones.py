"""The GPU zone table (components/catalog/zones.py) against the catalogs it serves, a few facts read from the SkyPilot
catalog rows it was built from, and the loader's checks."""

import datetime
import re
from pathlib import Path

import pytest

from components.catalog.ec2_instances import ec2_instances_in
from components.catalog.gcp_machines import FIXED_GPU_MACHINES, GCE_ACCELERATOR_TYPES, VERTEX_REGION_ACCELERATORS
from components.catalog.zones import FIELDS, N1, ROWS, _load, ec2_zones, gce_region_zones, gce_zones

CATALOG = "skypilot-org/skypilot-catalog@"
SOURCES = {
    "gcp": CATALOG + "2c3d7ea7d76bf84cf80d382e946c1609571485fd:catalogs/v9/gcp/vms.csv",
    "aws": CATALOG + "3e9a1751b1edfb3592877f242c2f8dc10fc1fc6e:catalogs/v9/aws/vms.csv",
}
AWS_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


def test_the_table_loads_both_platforms_with_a_source_and_date_on_every_row():
    assert {r.platform for r in ROWS} == {"aws", "gcp"}
    assert {r.region for r in ROWS if r.platform == "gcp"} == set(VERTEX_REGION_ACCELERATORS)
    assert {r.region for r in ROWS if r.platform == "aws"} == set(AWS_REGIONS)
    for r in ROWS:
        assert r.source.startswith(SOURCES[r.platform]), r
        assert f"AvailabilityZone={r.zone}" in r.source, r
        datetime.date.fromisoformat(r.as_of)


def test_gcp_rows_name_the_accelerator_the_machine_comes_with():
    for r in (r for r in ROWS if r.platform == "gcp"):
        if r.machine == N1:
            assert r.accelerator in ("nvidia-tesla-t4", "nvidia-tesla-v100"), r
        else:
            assert r.accelerator == GCE_ACCELERATOR_TYPES[FIXED_GPU_MACHINES[r.machine][0]], r


@pytest.mark.parametrize("region", sorted(VERTEX_REGION_ACCELERATORS))
def test_every_accelerator_vertex_offers_in_a_region_has_a_compute_engine_zone_there(region):
    assert gce_region_zones(region)
    for enum in VERTEX_REGION_ACCELERATORS[region]:
        zones = gce_zones(region, enum)
        assert zones, (region, enum)
        assert set(zones) <= set(gce_region_zones(region))


def test_l4_is_offered_in_some_but_not_all_zones_of_us_central1_and_us_east4():
    # The catalog's L4 (and g2-standard-*) rows: us-central1-a/b/c, not f; us-east4-a/c, not b.
    assert gce_zones("us-central1", "nvidia-l4") == ("us-central1-a", "us-central1-b", "us-central1-c")
    assert gce_region_zones("us-central1") == ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f")
    assert gce_zones("us-east4", "nvidia-l4") == ("us-east4-a", "us-east4-c")
    assert gce_region_zones("us-east4") == ("us-east4-a", "us-east4-b", "us-east4-c")
    # Vertex's enum names the same accelerator.
    assert gce_zones("us-central1", "NVIDIA_L4") == gce_zones("us-central1", "nvidia-l4")


def test_a_family_s_sizes_need_not_share_zones():
    assert gce_zones("asia-southeast1", "nvidia-tesla-a100", "a2-highgpu-1g") == (
        "asia-southeast1-a", "asia-southeast1-b", "asia-southeast1-c")
    assert gce_zones("asia-southeast1", "nvidia-tesla-a100", "a2-megagpu-16g") == (
        "asia-southeast1-a", "asia-southeast1-c")
    assert gce_zones("us-west1", "nvidia-tesla-a100", "a2-megagpu-16g") == ()
    # A machine with another accelerator than asked finds nothing.
    assert gce_zones("us-central1", "nvidia-l4", "a2-highgpu-1g") == ()


def test_n1_types_find_the_zones_of_their_attached_gpu():
    t4 = gce_zones("us-central1", "nvidia-tesla-t4")
    assert t4 == ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f")
    assert gce_zones("us-central1", "nvidia-tesla-t4", "n1-standard-8") == t4
    assert gce_zones("us-east4", "nvidia-tesla-v100") == ()
    assert gce_zones("europe-west4", "nvidia-tesla-v100", "n1-highmem-16") == (
        "europe-west4-a", "europe-west4-b", "europe-west4-c")


def test_h200_and_a100_80gb_are_in_one_zone_of_some_regions():
    assert gce_zones("us-central1", "nvidia-h200-141gb") == ("us-central1-b",)
    assert gce_zones("us-east4", "nvidia-a100-80gb") == ("us-east4-c",)
    assert gce_zones("asia-southeast1", "nvidia-h200-141gb") == ()


@pytest.mark.parametrize("region", AWS_REGIONS)
def test_every_ec2_gpu_type_the_project_knows_in_a_region_has_a_zone_there(region):
    for itype in ec2_instances_in(region):
        assert ec2_zones(region, itype), (region, itype)


def test_ec2_zones_are_zone_ids_not_account_specific_names_and_no_local_zones():
    for r in (r for r in ROWS if r.platform == "aws"):
        assert re.fullmatch(r"(use1|usw2|euw1)-az[0-9]", r.zone), r


def test_ec2_facts_read_from_the_catalog():
    assert ec2_zones("us-east-1", "g5.xlarge") == ("use1-az1", "use1-az2", "use1-az4", "use1-az5", "use1-az6")
    assert ec2_zones("us-west-2", "g6e.xlarge") == ("usw2-az1", "usw2-az2", "usw2-az3", "usw2-az4")
    assert ec2_zones("eu-west-1", "p4d.24xlarge") == ("euw1-az2",)
    assert ec2_zones("eu-west-1", "g6.xlarge") == ()
    # Zones the catalog prices on demand only are listed, and their source says so.
    assert ec2_zones("us-east-1", "p3.2xlarge") == tuple(f"use1-az{n}" for n in range(1, 7))
    no_spot = {r.zone for r in ROWS if r.machine == "p3.2xlarge" and "SpotPrice empty" in r.source}
    assert no_spot == {"use1-az3", "use1-az4"}


def test_unknown_regions_types_and_accelerators_give_no_zones():
    assert gce_zones("mars-central1", "nvidia-l4") == ()
    assert gce_region_zones("mars-central1") == ()
    assert gce_zones("us-central1", "nvidia-b200") == ()
    assert ec2_zones("mars-east-1", "g5.xlarge") == ()
    assert ec2_zones("us-east-1", "x9.huge") == ()
    # The platforms do not mix: a GCP region asks nothing of AWS rows, and the other way round.
    assert ec2_zones("us-central1", "g2-standard-8") == ()
    assert gce_region_zones("us-east-1") == ()


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "zones.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = "gcp,us-central1,us-central1-a,g2-standard-8,nvidia-l4,somewhere,2026-12-02"


def test_the_loader_reads_a_good_file(tmp_path):
    (row,) = _load(write(tmp_path, ",".join(FIELDS), GOOD))
    assert (row.zone, row.machine, row.accelerator) == ("us-central1-a", "g2-standard-8", "nvidia-l4")


@pytest.mark.parametrize(("lines", "message"), [
    (("platform,region,zone", GOOD), "header"),
    ((",".join(FIELDS), GOOD, GOOD), "listed twice"),
    ((",".join(FIELDS), GOOD.replace("us-central1-a", "us-east4-a")), "not in region"),
    ((",".join(FIELDS), "aws,us-east-1,us-east-1a,g5.xlarge,A10G,somewhere,2026-12-02"), "zone ID"),
    ((",".join(FIELDS), GOOD.replace("somewhere", " ")), "no source"),
    ((",".join(FIELDS), GOOD.replace("gcp,", "azure,", 1)), "platform"),
])
def test_the_loader_refuses_a_bad_file(tmp_path, lines, message):
    with pytest.raises(ValueError, match=message):
        _load(write(tmp_path, *lines))
