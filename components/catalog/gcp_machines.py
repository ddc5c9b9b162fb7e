"""Google Cloud GPU machine types for Vertex AI prediction: which accelerator a machine takes, in which counts,
and where Vertex offers each accelerator.

Sources, read 2026-11-29: Compute Engine "GPU machine types" (accelerator-optimized A2, A3, G2 families with
their attached GPUs; N1 with attachable T4 and V100 in counts), Vertex AI "Configure compute resources for
inference" (machine types for prediction) and Vertex AI "Locations" (accelerators for prediction per region).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .gpus import GPUS, Gpu

# Vertex's AcceleratorType enum -> the GPU it names.
ACCELERATORS: dict[str, str] = {
    "NVIDIA_TESLA_T4": "T4",
    "NVIDIA_TESLA_V100": "V100",
    "NVIDIA_L4": "L4",
    "NVIDIA_TESLA_A100": "A100-40GB",
    "NVIDIA_A100_80GB": "A100-80GB",
    "NVIDIA_H100_80GB": "H100",
    "NVIDIA_H100_MEGA_80GB": "H100",
    "NVIDIA_H200_141GB": "H200",
}

# Vertex's enum -> Compute Engine's accelerator type name, the name GPU quotas and `guestAccelerators` use (Compute
# Engine "GPU machine types", read 2026-12-02).
GCE_ACCELERATOR_TYPES: dict[str, str] = {
    "NVIDIA_TESLA_T4": "nvidia-tesla-t4",
    "NVIDIA_TESLA_V100": "nvidia-tesla-v100",
    "NVIDIA_L4": "nvidia-l4",
    "NVIDIA_TESLA_A100": "nvidia-tesla-a100",
    "NVIDIA_A100_80GB": "nvidia-a100-80gb",
    "NVIDIA_H100_80GB": "nvidia-h100-80gb",
    "NVIDIA_H100_MEGA_80GB": "nvidia-h100-mega-80gb",
    "NVIDIA_H200_141GB": "nvidia-h200-141gb",
}

# Accelerator-optimized machines come with a fixed GPU type and count.
FIXED_GPU_MACHINES: dict[str, tuple[str, int]] = {
    **{f"g2-standard-{n}": ("NVIDIA_L4", 1) for n in (4, 8, 12, 16, 32)},
    "g2-standard-24": ("NVIDIA_L4", 2),
    "g2-standard-48": ("NVIDIA_L4", 4),
    "g2-standard-96": ("NVIDIA_L4", 8),
    **{f"a2-highgpu-{n}g": ("NVIDIA_TESLA_A100", n) for n in (1, 2, 4, 8)},
    "a2-megagpu-16g": ("NVIDIA_TESLA_A100", 16),
    **{f"a2-ultragpu-{n}g": ("NVIDIA_A100_80GB", n) for n in (1, 2, 4, 8)},
    **{f"a3-highgpu-{n}g": ("NVIDIA_H100_80GB", n) for n in (1, 2, 4, 8)},
    "a3-megagpu-8g": ("NVIDIA_H100_MEGA_80GB", 8),
    "a3-ultragpu-8g": ("NVIDIA_H200_141GB", 8),
}

# N1 machines take attachable GPUs, in these counts.
N1_ACCELERATOR_COUNTS: dict[str, tuple[int, ...]] = {
    "NVIDIA_TESLA_T4": (1, 2, 4),
    "NVIDIA_TESLA_V100": (1, 2, 4, 8),
}
N1_MACHINE = re.compile(r"^n1-(standard|highmem)-(2|4|8|16|32|64|96)$")

# Accelerators Vertex AI offers for prediction, per region.
VERTEX_REGION_ACCELERATORS: dict[str, frozenset[str]] = {
    "us-central1": frozenset({"NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100", "NVIDIA_L4", "NVIDIA_TESLA_A100",
                              "NVIDIA_A100_80GB", "NVIDIA_H100_80GB", "NVIDIA_H100_MEGA_80GB"}),
    "us-east4": frozenset({"NVIDIA_TESLA_T4", "NVIDIA_L4", "NVIDIA_A100_80GB", "NVIDIA_H100_80GB"}),
    "us-west1": frozenset({"NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100", "NVIDIA_L4", "NVIDIA_H100_80GB"}),
    "europe-west4": frozenset({"NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100", "NVIDIA_L4", "NVIDIA_TESLA_A100",
                               "NVIDIA_A100_80GB", "NVIDIA_H100_80GB"}),
    "asia-southeast1": frozenset({"NVIDIA_TESLA_T4", "NVIDIA_L4", "NVIDIA_TESLA_A100", "NVIDIA_A100_80GB",
                                  "NVIDIA_H100_80GB"}),
}


@dataclass(frozen=True)
class GcpGpuHost:
    machine_type: str
    accelerator_type: str
    accelerator_count: int
    gpu: Gpu

    @property
    def total_gpu_memory_gib(self) -> float:
        return self.gpu.memory_gib * self.accelerator_count


def allowed_accelerators(machine_type: str) -> dict[str, tuple[int, ...]]:
    """Accelerator types a machine type takes, with the counts allowed; empty for an unknown machine."""
    if machine_type in FIXED_GPU_MACHINES:
        accelerator, count = FIXED_GPU_MACHINES[machine_type]
        return {accelerator: (count,)}
    if N1_MACHINE.match(machine_type):
        return dict(N1_ACCELERATOR_COUNTS)
    return {}


def machines_for(accelerator: str) -> list[str]:
    """Machine types that take `accelerator` (for suggestions in errors)."""
    fixed = [m for m, (a, _) in FIXED_GPU_MACHINES.items() if a == accelerator]
    return fixed or (["n1-standard-*", "n1-highmem-*"] if accelerator in N1_ACCELERATOR_COUNTS else [])


def host(machine_type: str, accelerator_type: str, accelerator_count: int) -> GcpGpuHost:
    return GcpGpuHost(machine_type, accelerator_type, accelerator_count, GPUS[ACCELERATORS[accelerator_type]])


def gpu_machine_types() -> list[str]:
    return [*FIXED_GPU_MACHINES, "n1-standard-{2..96}", "n1-highmem-{2..96}"]


# The proxy-only subnet Envoy-based internal load balancers take their proxies from (one per region and network;
# Cloud Load Balancing docs, "Proxy-only subnets"): a /23 the environment's own range must stay clear of.
PROXY_SUBNET_CIDR = "10.254.0.0/23"
