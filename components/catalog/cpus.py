"""CPU hosts for CPU-only (llama.cpp) serving: peak memory bandwidth, which bounds decoding, and peak dense FP32
compute, which bounds prompt processing.

Figures are derived from the vendors' published specifications, as the comment of each row says (memory
channels x bus width x transfer rate; cores x clock x FP32 FLOPs per cycle of the core's vector units); they were
not re-measured here. The throughput model applies the same efficiency factors as on GPUs (components/sizing.py),
which were fit to GPU measurements only: treat CPU figures as estimates.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cpu:
    name: str
    bandwidth_gb_s: float
    fp32_tflops: float
    """Of all its cores: a replica limited to fewer CPUs gets its share (`cores`)."""
    cores: int
    source: str


CPUS: dict[str, Cpu] = {
    c.name: c
    for c in (
        # One channel of DDR5-4800 (8 bytes x 4.8 GT/s); 4 Gracemont cores x 3.4 GHz x 16 (2 x 128-bit FMA).
        Cpu("intel-n100", 38.4, 0.218, 4, "Intel ARK, Processor N100 (2023): 1 memory channel, DDR5-4800; 4 cores, "
                                       "3.4 GHz"),
        # LPDDR4X-4267 on a 32-bit bus (4 bytes x 4.267 GT/s); 4 Cortex-A76 x 2.4 GHz x 16 (2 x 128-bit FMA).
        Cpu("raspberry-pi-5", 17.1, 0.154, 4, "Raspberry Pi 5 product brief (2023): LPDDR4X-4267 SDRAM, 4 x Cortex-A76 "
                                           "at 2.4 GHz"),
        # Eight channels of DDR5-4400 (8 bytes x 4.4 GT/s); 32 cores x 2.1 GHz base x 64 (2 x 512-bit FMA).
        Cpu("xeon-gold-6430", 281.6, 4.3, 32,
            "Intel ARK, Xeon Gold 6430 (2023): 8 memory channels, DDR5-4400; 32 cores, 2.1 GHz base, 2 AVX-512 FMA "
            "units"),
    )
}
