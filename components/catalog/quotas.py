"""The cloud quotas a GPU deployment needs, one row per need, each with the source its name and code were read
from: the table `selfhost quota` checks the plan against before `pulumi up`.

The rows live in data/quotas.csv (header need,platform,service,quota_name,quota_code,unit,scope,source,as_of),
keyed by `need`, our name for what a resource draws on:

- `sagemaker-endpoint:<ml type>`: Service Quotas (service `sagemaker`) "<ml type> for endpoint usage", in instances
  per region, for every GPU type of sagemaker_instances.py. Codes from a public ListServiceQuotas export (one row
  per code and name), cross-checked against aws-samples/easy-model-deployer's code table where it has the type.
- `ec2-vcpus:<on-demand|spot>:<class>`: the EC2 vCPU quotas per instance-family class, as the EC2 "On-Demand
  Instance quotas" and "Spot Instance quotas" tables name and link them (the console link carries the code). Spot P
  is two quotas now: "All P4, P3 and P2 Spot Instance Requests" (class `P`) and "All P5 Spot Instance Requests"
  (class `P5`); on demand, every P family is one quota.
- `fargate-vcpus:on-demand`: Service Quotas (service `fargate`) "Fargate On-Demand vCPU resource count", the vCPUs
  of the running Fargate tasks (ECS and EKS) per region: what the router's ECS service (components/aws/router.py)
  draws on.
- `cloud-run-cpu`: Cloud Run's "Total CPU allocation" per project and region (quota id CpuAllocPerProjectRegion,
  Cloud Quotas metric run.googleapis.com/cpu_allocation, milli-vCPUs): what the router's Cloud Run instances
  (components/gcp/router.py) draw on.
- `gce-gpus:<on-demand|spot>:<accelerator>` (Compute Engine accelerator type names) and `gce-gpus-all-regions`: the
  metric `compute.regions.get` (or, for all regions, `projects.get`) reports in `quotas[].metric`, read from the
  Compute Engine API's own `Quota.metric` enum. The H100, H100 Mega and H200 have no on-demand metric there: they
  are counted by Cloud Quotas' "GPUs per GPU family" (GPUS-PER-GPU-FAMILY-per-project-region, metric
  compute.googleapis.com/gpus_per_gpu_family, dimensions region and gpu_family), which regions.get does not list.
- `vertex-gpus:<accelerator enum>` and `vertex-gpus-spot:<enum>`: Vertex AI's custom-model-serving GPU quotas per
  region; `quota_code` is the Cloud Quotas metric (aiplatform.googleapis.com/custom_model_serving_..._gpus),
  `quota_name` the Cloud Quotas quota id (CustomModelServing...PerProjectPerRegion), both as Google's gcloud and
  Vertex AI sample code use them.

A code is in the table only where a source gives it; elsewhere `quota_code` is None and the row's source says what
was looked for. A checker then matches the quota by name (AWS: the Service Quotas QuotaName; Vertex AI: the quota
id in `quota_name`), never by a guessed code. `source` is a URL or repo@commit:path with what was read there;
`as_of` the source's own date where it gives one, else the day it was read.
"""

from __future__ import annotations

import csv
import datetime
import re
from dataclasses import dataclass
from pathlib import Path

from .sagemaker_instances import family_of

DATA = Path(__file__).parent / "data" / "quotas.csv"
FIELDS = ("need", "platform", "service", "quota_name", "quota_code", "unit", "scope", "source", "as_of")
SCOPES = ("region", "global")

_GPU_FAMILY = re.compile(r"\(gpu_family=([A-Z0-9_]+)\)")


@dataclass(frozen=True)
class QuotaRow:
    need: str
    platform: str
    service: str
    quota_name: str
    quota_code: str | None
    unit: str
    scope: str
    source: str
    as_of: str

    @property
    def metric(self) -> str | None:
        """Google Cloud's Cloud Quotas metric. Compute Engine names it after the regions.get metric, lower-cased
        (its QUOTA_EXCEEDED error gives both: "Quota 'GPUS_ALL_REGIONS' exceeded ... metric name =
        compute.googleapis.com/gpus_all_regions"); Vertex AI's and Cloud Run's is the row's code."""
        if self.service in ("aiplatform.googleapis.com", "run.googleapis.com"):
            return self.quota_code
        if self.service != "compute.googleapis.com":
            return None
        if self.quota_code:
            return f"{self.service}/{self.quota_code.lower()}"
        if self.quota_name.startswith("GPUs per GPU family"):
            return f"{self.service}/gpus_per_gpu_family"
        return None

    @property
    def gpu_family(self) -> str | None:
        """The `gpu_family` dimension of a "GPUs per GPU family" row, where a source gives it."""
        m = _GPU_FAMILY.search(self.quota_name)
        return m[1] if m else None


def _check(row: QuotaRow) -> None:
    if not row.need or not row.quota_name:
        raise ValueError(f"{row.need or '?'}: empty need or quota_name")
    # Which services a platform files its rows under is the platform's (Platform.quota_services): checked where the
    # registry is known (components/targets/registry.py check_quota_table), not here.
    if not row.platform or not row.service:
        raise ValueError(f"{row.need}: empty platform or service")
    if row.scope not in SCOPES:
        raise ValueError(f"{row.need}: scope {row.scope!r} not in {SCOPES}")
    if not row.source.strip():
        raise ValueError(f"{row.need}: no source")
    datetime.date.fromisoformat(row.as_of)


def _load(path: Path = DATA) -> dict[str, QuotaRow]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f"{path}: header must be {','.join(FIELDS)}")
        out: dict[str, QuotaRow] = {}
        for line, raw in enumerate(reader, start=2):
            row = QuotaRow(raw["need"], raw["platform"], raw["service"], raw["quota_name"],
                           raw["quota_code"].strip() or None, raw["unit"], raw["scope"], raw["source"], raw["as_of"])
            _check(row)
            if row.need in out:
                raise ValueError(f"{path}:{line}: {row.need} listed twice")
            out[row.need] = row
    return out


QUOTAS: dict[str, QuotaRow] = _load()
_FILES: set[Path] = {DATA}


def register(path: Path) -> None:
    """Add a platform's own rows (Platform.quota_file); a need listed twice is an error, not an override."""
    if path in _FILES:
        return
    rows = _load(path)
    twice = sorted(set(rows) & set(QUOTAS))
    if twice:
        raise ValueError(f"{path}: {twice[0]} is already in the quota table")
    QUOTAS.update(rows)
    _FILES.add(path)


def quota_for(need: str) -> QuotaRow | None:
    """The row of `need` (e.g. `sagemaker-endpoint:ml.g5.2xlarge`), None when the table lacks it."""
    return QUOTAS.get(need)


# EC2 family (the type's part before the dot) -> vCPU quota class, longest prefix first: the quota names list the
# families they count by initial letter ("Standard (A, C, D, H, I, M, R, T, Z)", "G and VT", "P", "Inf", "DL",
# "Trn"; EC2 "On-Demand Instance quotas" and "Spot Instance quotas",
# https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html, read 2026-12-02), so the
# families whose initial is a Standard letter but that have a quota of their own (inf, dl, trn, hpc, mac) must be
# matched before it.
_CLASS_PREFIXES: tuple[tuple[str, str | None], ...] = (
    ("inf", "inf"),
    ("dl", "dl"),
    ("trn", "trn"),
    ("vt", "G"),
    # Quotas of their own (HPC, High Memory, F, X) or Dedicated Hosts only (Mac): no row in the table.
    ("hpc", None), ("mac", None), ("u-", None), ("u7", None), ("f", None), ("x", None),
    ("g", "G"),
    ("p", "P"),
    *((letter, "standard") for letter in "acdhimrtz"),
)

# Spot only: "All P5 Spot Instance Requests" beside "All P4, P3 and P2 Spot Instance Requests". That p5e and p5en
# count as P5 is read from the name alone (no page lists the sub-families); the P6 families, which neither name,
# are left out rather than guessed.
_SPOT_P = {"p2": "P", "p3": "P", "p3dn": "P", "p4d": "P", "p4de": "P", "p5": "P5", "p5e": "P5", "p5en": "P5"}


def ec2_class(instance_type: str, spot: bool = False) -> str:
    """The class of `ec2-vcpus:<on-demand|spot>:<class>` that an EC2 (or SageMaker ml.) instance type counts
    against: `G`, `P`, `P5` (spot only), `standard`, `inf`, `dl` or `trn`. ValueError for a family the table has no
    vCPU quota row for."""
    family = family_of(instance_type.strip().lower())
    cls = next((c for prefix, c in _CLASS_PREFIXES if family.startswith(prefix)), None)
    if cls == "P" and spot:
        cls = _SPOT_P.get(family)
    if cls is None:
        raise ValueError(f"{instance_type}: no EC2 vCPU quota class in the quota table for family {family!r}")
    return cls
