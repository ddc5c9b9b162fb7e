"""SageMaker GPU instance types: GPU model, count and memory, per region.

Primary source: the `sagemaker` package's own `image_uri_config/instance_gpu_info.json` (GPU count and total
memory per ml.* type per region), read at import from the installed package so a package upgrade updates it.
It predates the G6/G6e families and omits ml.g5.xlarge; SUPPLEMENT fills those from the AWS "Amazon SageMaker
pricing" instance tables (accelerated computing), read 2026-11-29, in the same units (nominal GiB x 1024).
Types that cannot be had are taken out again: NOT_A_TYPE everywhere, NOT_OFFERED per region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.metadata import distribution

from .gpus import GPUS, Gpu

# Instance family -> GPU model. Source: AWS EC2 accelerated computing instance pages, read 2026-11-29.
FAMILY_GPU: dict[str, str] = {
    "p3": "V100",
    "p3dn": "V100",
    "g4dn": "T4",
    "g5": "A10G",
    "g5n": "A10G",  # only the package's misspelt ml.g5n.xlarge (see NOT_A_TYPE): mapped, then not offered
    "g6": "L4",
    "g6e": "L40S",
    "p4d": "A100-40GB",
    "p4de": "A100-80GB",
    "p5": "H100",
    "p5e": "H200",
    "p5en": "H200",
}

# Kepler K80 (ml.p2): no current engine build (vLLM, TGI, LMI need compute capability 7.0 or newer) runs on it.
UNSUPPORTED_FAMILIES = frozenset({"p2"})

# Families whose hosts carry local NVMe instance storage. SageMaker rejects an endpoint configuration KmsKeyId
# for them ("instance storage ... is encrypted by hardware"; CreateEndpointConfig API reference, KmsKeyId).
INSTANCE_STORAGE_FAMILIES = frozenset({"g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en"})

_SUPPLEMENT_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1")
# type -> (gpu count, total GPU memory MiB)
SUPPLEMENT: dict[str, tuple[int, int]] = {
    "ml.g5.xlarge": (1, 24576),
    **{f"ml.g6.{s}": (1, 24576) for s in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")},
    "ml.g6.12xlarge": (4, 98304),
    "ml.g6.24xlarge": (4, 98304),
    "ml.g6.48xlarge": (8, 196608),
    **{f"ml.g6e.{s}": (1, 49152) for s in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")},
    "ml.g6e.12xlarge": (4, 196608),
    "ml.g6e.24xlarge": (4, 196608),
    "ml.g6e.48xlarge": (8, 393216),
}
# ml.p5e.48xlarge is not in SUPPLEMENT: AWS sells p5e.48xlarge through EC2 Capacity Blocks for ML (US East (Ohio)
# only, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-capacity-blocks.html, read 2026-12-02), not on
# demand: skypilot-org/skypilot-catalog@3e9a1751b1edfb3592877f242c2f8dc10fc1fc6e:catalogs/v9/aws/vms.csv, built
# from the EC2 Price List, has no on-demand price for it in any region. An endpoint or pool cannot be priced, nor
# reliably started, on it.

# The package's table lists "ml.g5n.xlarge" (1 GPU, 22888 MiB) in every region. AWS has no g5n family, on EC2 or on
# SageMaker (EC2 accelerated computing instance pages: G5 and G5g only; no g5n row in the SkyPilot catalog above,
# which lists every EC2 type offered): an entry that cannot be deployed, so it is not offered.
NOT_A_TYPE = frozenset({"ml.g5n.xlarge"})

# Types the tables above give for a region where AWS does not offer them. eu-west-1: the SkyPilot catalog above,
# which lists each type in every region and zone EC2 offers it, has no eu-west-1 row for g6, g6e, p4de or p5
# (it has g4dn, g5, p3, p3dn and p4d there).
NOT_OFFERED: dict[str, frozenset[str]] = {
    "eu-west-1": frozenset({
        *(f"ml.{family}.{size}" for family in ("g6", "g6e")
          for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")),
        "ml.p4de.24xlarge", "ml.p5.48xlarge"}),
}


@dataclass(frozen=True)
class SageMakerInstance:
    instance_type: str
    gpu: Gpu
    gpu_count: int
    total_gpu_memory_gib: float

    @property
    def family(self) -> str:
        return family_of(self.instance_type)

    @property
    def has_instance_storage(self) -> bool:
        return self.family in INSTANCE_STORAGE_FAMILIES


def family_of(instance_type: str) -> str:
    """`g5` of `ml.g5.2xlarge` (SageMaker) and of `g5.2xlarge` (EC2)."""
    return instance_type.removeprefix("ml.").split(".")[0]


@cache
def _package_table() -> dict[str, dict[str, dict[str, int]]]:
    # Located through the distribution, not imported: importing sagemaker.core takes seconds.
    path = distribution("sagemaker-core").locate_file("sagemaker/core/image_uri_config/instance_gpu_info.json")
    return json.loads(path.read_text())


@cache
def instances_in(region: str) -> dict[str, SageMakerInstance]:
    """Every GPU instance type SageMaker hosts in `region`, keyed by type (empty for an unknown region)."""
    rows = {t: (v["Count"], v["TotalGpuMemoryInMiB"]) for t, v in _package_table().get(region, {}).items()}
    if region in _SUPPLEMENT_REGIONS:
        rows = {**SUPPLEMENT, **rows}
    gone = NOT_A_TYPE | NOT_OFFERED.get(region, frozenset())
    out = {}
    for itype, (count, mib) in rows.items():
        if itype in gone:
            continue
        gpu = GPUS.get(FAMILY_GPU.get(family_of(itype), ""))
        if gpu is None:
            continue
        out[itype] = SageMakerInstance(itype, gpu, count, mib / 1024)
    # Smallest first: suggestions then read from the cheapest kind of host that fits.
    return dict(sorted(out.items(), key=lambda kv: (kv[1].total_gpu_memory_gib, kv[1].gpu_count, kv[0])))


def known_regions() -> list[str]:
    return sorted(_package_table())
