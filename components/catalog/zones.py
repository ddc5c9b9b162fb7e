"""Which zones offer each GPU machine type, for the capacity hints of `selfhost quota`: a Compute Engine regional
managed instance group spread over a zone that lacks its accelerator fails there, and an EC2 spot pool's capacity
pools are its instance types x the zones that offer them.

The rows live in data/gpu_zones.csv (header platform,region,zone,machine,accelerator,source,as_of), read once:

- gcp: one row per (zone, machine type) for the accelerator-optimized families of gcp_machines.FIXED_GPU_MACHINES
  (g2, a2-highgpu, a2-megagpu, a2-ultragpu, a3-highgpu, a3-megagpu, a3-ultragpu), `accelerator` being the Compute
  Engine accelerator type the machine comes with (nvidia-l4, ...); and one row per (zone, attachable GPU) with
  machine `n1` for the T4 and V100 that N1 machines take. Regions: the keys of
  gcp_machines.VERTEX_REGION_ACCELERATORS (us-central1, us-east4, us-west1, europe-west4, asia-southeast1), which
  include the regions the price table covers. In these five regions every zone the catalog lists for any machine
  has at least one GPU row, so `gce_region_zones` is the region's whole zone list as the catalog knows it.
- aws: one row per (zone, instance type) for the GPU families g4dn, g5, g6, g6e, p3, p3dn, p4d, p4de, p5, p5e, p5en,
  p6-b200 and p6-b300 in us-east-1, us-west-2 and eu-west-1; `accelerator` is the catalog's AcceleratorName (A10G,
  L40S, H100, ...).

Source: SkyPilot's catalog v9 (skypilot-org/skypilot-catalog), catalogs/v9/gcp/vms.csv at
2c3d7ea7d76bf84cf80d382e946c1609571485fd and catalogs/v9/aws/vms.csv at 3e9a1751b1edfb3592877f242c2f8dc10fc1fc6e,
the commits the price table reads (pricing/data), one catalog row per (type, zone) with its Region and
AvailabilityZone. Read 2026-12-02; the commits' own dates were not available offline, so `as_of` is the read date.
GCP machine rows carry no accelerator (the catalog lists the GPUs apart, as rows without an InstanceType), so a
machine's zones are its own rows' zones; they agree with the GPU rows except that the catalog's 16 x A100 rows also
name asia-southeast1-b and us-west1-b, where it lists no a2-megagpu-16g: this table follows the machine rows.

Limits:
- A catalog snapshot, not a live API: zones gain and lose GPU types, and a zone that offers a type can still be out
  of capacity (ZONE_RESOURCE_POOL_EXHAUSTED, InsufficientInstanceCapacity). The live answer is
  `gcloud compute accelerator-types list` / `machine-types list` and `aws ec2 describe-instance-type-offerings
  --location-type availability-zone-id`.
- AWS zones are zone IDs (use1-az1), as the catalog lists them. Zone names (us-east-1a) are mapped to physical zones
  differently in every account; `aws ec2 describe-availability-zones` gives an account's ZoneName <-> ZoneId.
- Left out: AWS Local Zones (use1-atl2-az1, usw2-lax1-az1/az2: opt-in zones a regional pool does not use by default);
  GPUs and families the project does not deploy (GCP P100, P4, B200 a4, g4, a3-edgegpu; AWS g5g, g6f).
- A row's source says "SpotPrice empty there" where the catalog prices the type in that zone on demand only (no spot
  price seen, e.g. p3 in use1-az3/az4, p5.4xlarge everywhere): a hint that spot capacity there is thin or absent.
"""

from __future__ import annotations

import csv
import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .gcp_machines import GCE_ACCELERATOR_TYPES, N1_MACHINE

DATA = Path(__file__).parent / "data" / "gpu_zones.csv"
FIELDS = ("platform", "region", "zone", "machine", "accelerator", "source", "as_of")
PLATFORMS = ("aws", "gcp")
N1 = "n1"
"""The `machine` of rows for GPUs attached to N1 machines: the catalog lists those GPUs per zone, not per N1 type."""

# A zone ID: region code, "-az", number (use1-az1). A Local Zone's ID has a location part (use1-atl2-az1); the table
# leaves those out, so the pattern does too.
_AWS_ZONE_ID = re.compile(r"^[a-z]+[0-9]-az[0-9]+$")


@dataclass(frozen=True)
class ZoneRow:
    platform: str
    region: str
    zone: str  # GCP zone name (us-central1-a); AWS zone ID (use1-az1)
    machine: str  # GCE machine type or `n1`; EC2 instance type
    accelerator: str  # Compute Engine accelerator type name (GCP); the catalog's AcceleratorName (AWS)
    source: str
    as_of: str


def _check(row: ZoneRow) -> None:
    where = f"{row.platform} {row.zone} {row.machine}"
    if row.platform not in PLATFORMS:
        raise ValueError(f"{where}: platform {row.platform!r} not in {PLATFORMS}")
    if not all((row.region, row.zone, row.machine, row.accelerator)):
        raise ValueError(f"{where}: empty region, zone, machine or accelerator")
    if row.platform == "gcp" and not row.zone.startswith(f"{row.region}-"):
        raise ValueError(f"{where}: zone is not in region {row.region}")
    if row.platform == "aws" and not _AWS_ZONE_ID.match(row.zone):
        raise ValueError(f"{where}: not an AWS zone ID (use1-az1)")
    if not row.source.strip():
        raise ValueError(f"{where}: no source")
    datetime.date.fromisoformat(row.as_of)


def _load(path: Path = DATA) -> tuple[ZoneRow, ...]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f"{path}: header must be {','.join(FIELDS)}")
        seen: set[tuple[str, str, str, str]] = set()
        out = []
        for line, raw in enumerate(reader, start=2):
            row = ZoneRow(*(raw[name] for name in FIELDS))
            _check(row)
            key = (row.platform, row.zone, row.machine, row.accelerator)
            if key in seen:
                raise ValueError(f"{path}:{line}: {' '.join(key)} listed twice")
            seen.add(key)
            out.append(row)
    return tuple(out)


ROWS: tuple[ZoneRow, ...] = _load()


def _zones(rows: Iterable[ZoneRow]) -> tuple[str, ...]:
    return tuple(sorted({r.zone for r in rows}))


def gce_zones(region: str, accelerator: str, machine_type: str | None = None) -> tuple[str, ...]:
    """Zones of `region` that offer `accelerator`, sorted. `accelerator` is a Compute Engine accelerator type name
    (nvidia-l4) or Vertex's enum (NVIDIA_L4). With `machine_type`, only the zones that offer that machine type with
    it (any N1 type, n1-standard-8, counts as `n1`), since a family's sizes need not share zones (a2-megagpu-16g is
    in fewer zones than a2-highgpu-1g). () when the table lacks the region, accelerator or machine."""
    accelerator = GCE_ACCELERATOR_TYPES.get(accelerator, accelerator)
    machine = N1 if machine_type and N1_MACHINE.match(machine_type) else machine_type
    return _zones(r for r in ROWS if r.platform == "gcp" and r.region == region and r.accelerator == accelerator
                  and machine in (None, r.machine))


def gce_region_zones(region: str) -> tuple[str, ...]:
    """Every zone of `region` the table knows, sorted; () for a region it lacks."""
    return _zones(r for r in ROWS if r.platform == "gcp" and r.region == region)


def ec2_zones(region: str, instance_type: str) -> tuple[str, ...]:
    """Zone IDs (use1-az1) of `region` that offer the EC2 `instance_type`, sorted; () when the table lacks either."""
    return _zones(r for r in ROWS if r.platform == "aws" and r.region == region and r.machine == instance_type)
