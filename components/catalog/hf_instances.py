"""Hugging Face Inference Endpoints hardware: the GPU instances a `hf-endpoint` target can ask for, per vendor.

The instances are the rows of Hugging Face's published price table (data/huggingface.csv, from the
documentation's support/pricing.md; `selfhost prices refresh --hf-pricing` re-reads it): an instance exists
where Hugging Face prices it. Its SKU is `<instance type>-<size>` (nvidia-l4-x1, nvidia-a100-x4); the size is the
GPU count. Regions: the documentation's FAQ ("In which regions can I deploy an Inference Endpoint?",
huggingface/hf-endpoints-documentation@86ef8b31389b108c71879a8d58bd17da745dce6d:docs/source/support/faq.md):
AWS us-east-1 and eu-west-1, Google Cloud us-east4 (Azure's eastus is priced for CPUs only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from .gpus import GPUS, Gpu

# Instance type -> the GPU in our catalog (the table's Architecture column; its A100 has 80 GB).
INSTANCE_GPU: dict[str, str] = {
    "nvidia-t4": "T4",
    "nvidia-l4": "L4",
    "nvidia-a10g": "A10G",
    "nvidia-l40s": "L40S",
    "nvidia-a100": "A100-80GB",
    "nvidia-h100": "H100",
    "nvidia-h200": "H200",
}
REGIONS: dict[str, tuple[str, ...]] = {"aws": ("us-east-1", "eu-west-1"), "gcp": ("us-east4",)}
SERVICE = "inference-endpoint"
_SKU = re.compile(r"^(?P<type>[a-z0-9-]+)-x(?P<count>\d+)$")


@dataclass(frozen=True)
class HfInstance:
    vendor: str
    instance_type: str
    instance_size: str
    gpu: Gpu
    gpu_count: int

    @property
    def sku(self) -> str:
        return f"{self.instance_type}-{self.instance_size}"

    @property
    def total_gpu_memory_gib(self) -> float:
        return self.gpu.memory_gib * self.gpu_count


@cache
def instances(vendor: str) -> dict[str, HfInstance]:
    """Every GPU instance Hugging Face prices on `vendor`, keyed by SKU, smallest GPU memory first."""
    from .pricing import table

    found = []
    for row in table():
        m = _SKU.match(row.sku)
        if row.provider != "huggingface" or row.service != SERVICE or row.region != vendor or not m:
            continue
        if m["type"] in INSTANCE_GPU:
            found.append(HfInstance(vendor, m["type"], f"x{m['count']}", GPUS[INSTANCE_GPU[m["type"]]],
                                    int(m["count"])))
    return {i.sku: i for i in sorted(found, key=lambda i: (i.total_gpu_memory_gib, i.sku))}
