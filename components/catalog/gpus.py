"""GPU facts: memory, bandwidth and dense compute per accelerator.

Source: NVIDIA's data sheets (nvidia.com product pages of the T4, L4, L40S, A100, H100 SXM and H200) and, for the
A10G, the AWS EC2 G5 instance page (aws.amazon.com/ec2/instance-types/g5); read 2026-11-29. TFLOP/s are dense (no
sparsity); fp16 where the part has no bf16. GPU-to-GPU links from the same data sheets (NVLink generation and
bandwidth of the SXM parts; PCIe generation of the others).

Added for Azure ML (2026-12-08): the A10 (NVIDIA A10 data sheet, nvidia.com/en-us/data-center/products/a10-gpu:
24 GB GDDR6, 600 GB/s, BF16 tensor 125 TFLOP/s dense, 250 with sparsity; PCIe Gen4) and the H100 NVL (NVIDIA H100
data sheet, nvidia.com/en-us/data-center/h100, H100 NVL column: 94 GB HBM3, 3.9 TB/s, BF16 1,671 and FP8 3,341
TFLOP/s with sparsity, so 835.5 and 1,670.5 dense; NVLink bridge 600 GB/s between a pair). Those pages could not be
fetched here: the figures are as NVIDIA publishes them, cross-checked against a public GPU table in the code index
(H100 NVL "94 GB HBM3 | 3.9 TB/s | ~835 | ~1670 | NVLink bridge (600 GB/s)").
"""

from __future__ import annotations

from dataclasses import dataclass

from .tpus import CHIPS as TPU_CHIPS


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float
    bandwidth_gb_s: float
    bf16_tflops: float | None
    fp8_tflops: float | None = None
    # Generation matters for which quantizations run natively (fp8 needs Ada or Hopper).
    arch: str = ""
    link_gb_s: float = 32.0
    """GPU-to-GPU bandwidth one way, for tensor parallelism's all-reduces: NVLink where the servers that carry the
    part have it (SXM boards), else PCIe (Gen4 x16: 32 GB/s; Gen3: 16)."""


GPUS: dict[str, Gpu] = {
    g.name: g
    for g in (
        Gpu("T4", 16, 300, 65, None, "turing", 16),
        Gpu("V100", 16, 900, 125, None, "volta", 150),  # NVLink 2.0, 300 GB/s both ways (p3, SXM2)
        Gpu("A10G", 24, 600, 70, None, "ampere"),
        Gpu("L4", 24, 300, 121, 242, "ada"),
        Gpu("L40S", 48, 864, 362, 733, "ada"),
        Gpu("A100-40GB", 40, 1555, 312, None, "ampere", 300),  # NVLink 3, 600 GB/s both ways (SXM4)
        Gpu("A100-80GB", 80, 2039, 312, None, "ampere", 300),
        Gpu("H100", 80, 3350, 989, 1979, "hopper", 450),  # NVLink 4, 900 GB/s both ways (SXM5)
        Gpu("H200", 141, 4800, 989, 1979, "hopper", 450),
        # On-prem workstations: dense FP16/FP8 tensor rates with FP32 accumulate (NVIDIA Ada GPU architecture
        # whitepaper, appendix table of the GeForce RTX 4090).
        Gpu("RTX-4090", 24, 1008, 165.2, 330.3, "ada"),
        # Azure NVadsA10_v5 (whole-GPU sizes): PCIe Gen4, no NVLink.
        Gpu("A10", 24, 600, 125, None, "ampere"),
        # Azure NCads H100 v5: PCIe cards; the two of an NC80adis are joined by an NVLink bridge (600 GB/s both ways).
        Gpu("H100-NVL", 94, 3900, 835.5, 1670.5, "hopper", 300),
    )
}

NVIDIA_GPUS: dict[str, Gpu] = dict(GPUS)
"""The NVIDIA parts alone: what a Kubernetes node's `nvidia.com/gpu` and our CUDA images run on."""

# Cloud TPU chips are sized and priced as accelerators too, each chip one device of its host (their facts, sources
# and which are derived: components/catalog/tpus.py). Arch `tpu`: no fp8 matrix unit on v5e or v6e.
GPUS.update({c.name: Gpu(c.name, c.hbm_gib, c.bandwidth_gb_s, c.bf16_tflops, c.fp8_tflops, "tpu", c.ici_gb_s)
             for c in TPU_CHIPS.values()})
