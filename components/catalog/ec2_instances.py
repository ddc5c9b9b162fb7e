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
