"""EC2 GPU instance types for instance pools: GPU model, count and memory, local NVMe, per region.

An EC2 type and the SageMaker type of the same name (g5.2xlarge, ml.g5.2xlarge) are the same hardware (AWS EC2
accelerated computing instance pages, read 2026-12-01), so this reads the SageMaker table
(sagemaker_instances.py, from the `sagemaker` package's instance_gpu_info.json and its supplement) rather than
keeping a second copy. Prices: the price catalog's `ec2` (on-demand) and `ec2-spot` rows.
"""

from __future__ import annotations

from functools import cache

from .sagemaker_instances import SageMakerInstance, instances_in

Ec2GpuInstance = SageMakerInstance
"""instance_type without the `ml.` prefix; the same fields."""


@cache
def ec2_instances_in(region: str) -> dict[str, Ec2GpuInstance]:
    """Every GPU instance type known in `region`, keyed by EC2 type name, smallest GPU memory first."""
    return {itype.removeprefix("ml."): SageMakerInstance(itype.removeprefix("ml."), i.gpu, i.gpu_count,
                                                         i.total_gpu_memory_gib)
            for itype, i in instances_in(region).items()}


# vCPUs by instance size, the same in every current GPU family (AWS "Accelerated computing" instance type
# specifications, read 2026-12-02: g4dn, g5, g6, g6e, p3, p4d, p5; e.g. g5.xlarge 4, g5.12xlarge 48, p4d.24xlarge
# 96, p5.48xlarge 192). EC2's vCPU-based quotas count these.
VCPUS_BY_SIZE = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "12xlarge": 48,
                 "16xlarge": 64, "24xlarge": 96, "48xlarge": 192}


def vcpus(instance_type: str) -> int | None:
    """The vCPUs of an EC2 instance type (`g5.2xlarge` -> 8); None for a size the table lacks (metal)."""
    return VCPUS_BY_SIZE.get(instance_type.removeprefix("ml.").partition(".")[2])
