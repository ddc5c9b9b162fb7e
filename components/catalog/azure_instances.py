"""The GPU VM sizes Azure Machine Learning managed online endpoints deploy on: GPUs, vCPUs, RAM, the VM family
quota they draw on, and the regions that offer them.

Sources (read 2026-12-08):

- Which sizes, their family (quota) names, GPU and core counts, and which are exempt from the 20% upgrade reserve:
  Microsoft Learn "Managed online endpoints SKU list" (reference-managed-online-endpoints-vm-sku-list), as
  MicrosoftDocs/azure-ai-docs@1d987e37c168d7ef6eaeb8441da7967a197aac00:
  articles/machine-learning/reference-managed-online-endpoints-vm-sku-list.md. Its NV A10 v5 sizes below one GPU
  (NV6/NV12/NV18ads, a sixth to a half of a GPU) are left out: a fraction of a GPU cannot hold a model's weights
  the way the sizing counts them. Its ND96is_H100_v5 (no InfiniBand) is left out too: no price for it was found.
- vCPUs and RAM: the same table's cores; RAM from
  skypilot-org/skypilot-catalog@098741e70562f65d7af1cceb81e33b284f742604:catalogs/v6/azure/vms.csv (its MemoryGiB
  column, read from Azure's resource SKUs), except the ND sizes, where Microsoft Learn's size pages give 900
  (ND96asr_v4) and 1,900 GiB (ND96amsr_A100_v4, ND96isr_H100_v5) and the SkyPilot file differs (1,800 for the
  ND96amsr).
- GPU models: each series' Microsoft Learn page (NCasT4_v3: T4; NCv3: V100 16 GB PCIe; NC A100 v4: A100 80 GB PCIe;
  NCads H100 v5: H100 NVL 94 GB; NVadsA10 v5: A10; ND A100 v4: A100 40 GB SXM4; NDm A100 v4: A100 80 GB SXM4;
  ND H100 v5: H100 80 GB SXM5). The gpus.py row is the nearest part: the NCv3's PCIe V100 and the NC A100 v4's PCIe
  A100 80 GB take the SXM rows' memory and bandwidth (their NVLink figure overstates a PCIe link).
- Regions (REGION_INSTANCES): no page lists managed online endpoint sizes per region. A size is counted as offered in
  a region where Azure prices the VM there: the Price column of the SkyPilot catalog above (built from the Azure
  Retail Prices API), which covers US regions only. So eastus, eastus2 and westus3 are listed; westeurope and
  swedencentral are not, for want of an offline source (components/catalog/pricing/data/azure.csv still prices
  every size in westeurope, derived).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .gpus import GPUS

SKU_LIST = ("MicrosoftDocs/azure-ai-docs@1d987e37c168d7ef6eaeb8441da7967a197aac00:"
            "articles/machine-learning/reference-managed-online-endpoints-vm-sku-list.md")
SKYPILOT = "skypilot-org/skypilot-catalog@098741e70562f65d7af1cceb81e33b284f742604:catalogs/v6/azure/vms.csv"
SOURCE = f"{SKU_LIST} (sizes, families, GPU and core counts); {SKYPILOT} (RAM, regions); Microsoft Learn GPU size pages"
AS_OF = "2026-12-08"

# Azure ML holds back quota for upgrades on managed online endpoints: a deployment of n instances needs quota for
# ceil(1.2 * n) instances' cores, except on the sizes the SKU list marks "Skip 20% Reservation" (RESERVE_EXEMPT).
# MicrosoftDocs/azure-ai-docs@efb1e2632aab66138c4170f2e719a29cab49de56:
# articles/machine-learning/includes/quota-allocation-online-deployment.md ("you must have a quota for
# `ceil(1.2 * number of instances requested for deployment) * number of cores for the VM SKU`"), and
# how-to-manage-quotas.md ("if you request 10 instances in a deployment, you must have a quota for 12").
UPGRADE_RESERVE = 0.2


@dataclass(frozen=True)
class AzureInstance:
    name: str
    """Exactly as ARM spells it: `Standard_NC24ads_A100_v4`."""
    gpu: str
    """A key of components/catalog/gpus.py GPUS."""
    gpu_count: int
    vcpus: int
    memory_gib: float
    family: str
    """The VM family quota the Azure ML usages API reports (`standardNCADSA100v4Family`), as the SKU list names it
    with its spaces removed."""


def _i(name: str, gpu: str, gpu_count: int, vcpus: int, memory_gib: float, family: str) -> AzureInstance:
    return AzureInstance(name, gpu, gpu_count, vcpus, memory_gib, family)


# Family names: the SKU list's "Family Name" column without its spaces ("standard NCASv3_T4 Family" ->
# "standardNCASv3_T4Family"), the form the Azure ML usages API and `az ml compute list-usage` key quotas by.
T4, V100, A100, H100NC, A10 = ("standardNCASv3_T4Family", "standardNCSv3Family", "standardNCADSA100v4Family",
                               "standardNCADSH100v5Family", "standardNVADSA10v5Family")
ND_A100, NDM_A100, ND_H100 = "standardNDASv4_A100Family", "standardNDAMSv4_A100Family", "standardNDv5H100Family"

INSTANCES: dict[str, AzureInstance] = {
    i.name: i
    for i in (
        # NCasT4_v3: 1 T4 up to NC16, 4 on the NC64.
        _i("Standard_NC4as_T4_v3", "T4", 1, 4, 28, T4),
        _i("Standard_NC8as_T4_v3", "T4", 1, 8, 56, T4),
        _i("Standard_NC16as_T4_v3", "T4", 1, 16, 110, T4),
        _i("Standard_NC64as_T4_v3", "T4", 4, 64, 440, T4),
        # NCv3: V100 16 GB (PCIe).
        _i("Standard_NC6s_v3", "V100", 1, 6, 112, V100),
        _i("Standard_NC12s_v3", "V100", 2, 12, 224, V100),
        _i("Standard_NC24s_v3", "V100", 4, 24, 448, V100),
        # NC A100 v4: A100 80 GB (PCIe).
        _i("Standard_NC24ads_A100_v4", "A100-80GB", 1, 24, 220, A100),
        _i("Standard_NC48ads_A100_v4", "A100-80GB", 2, 48, 440, A100),
        _i("Standard_NC96ads_A100_v4", "A100-80GB", 4, 96, 880, A100),
        # NCads H100 v5: H100 NVL 94 GB.
        _i("Standard_NC40ads_H100_v5", "H100-NVL", 1, 40, 320, H100NC),
        _i("Standard_NC80adis_H100_v5", "H100-NVL", 2, 80, 640, H100NC),
        # NVadsA10 v5, whole-GPU sizes only; the adms has twice the RAM of the ads.
        _i("Standard_NV36ads_A10_v5", "A10", 1, 36, 440, A10),
        _i("Standard_NV36adms_A10_v5", "A10", 1, 36, 880, A10),
        _i("Standard_NV72ads_A10_v5", "A10", 2, 72, 880, A10),
        # ND: eight SXM GPUs with NVLink, InfiniBand between VMs.
        _i("Standard_ND96asr_v4", "A100-40GB", 8, 96, 900, ND_A100),
        _i("Standard_ND96amsr_A100_v4", "A100-80GB", 8, 96, 1900, NDM_A100),
        _i("Standard_ND96isr_H100_v5", "H100", 8, 96, 1900, ND_H100),
    )
}

# The SKU list's "Skip 20% Reservation: Yes" rows among ours: the A100 and H100 sizes, NC and ND.
RESERVE_EXEMPT: frozenset[str] = frozenset({
    "Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_NC96ads_A100_v4",
    "Standard_NC40ads_H100_v5", "Standard_NC80adis_H100_v5",
    "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4", "Standard_ND96isr_H100_v5",
})

_T4S = {"Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC16as_T4_v3", "Standard_NC64as_T4_v3"}
_V100S = {"Standard_NC6s_v3", "Standard_NC12s_v3", "Standard_NC24s_v3"}
_A100S = {"Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_NC96ads_A100_v4"}
_H100S = {"Standard_NC40ads_H100_v5", "Standard_NC80adis_H100_v5"}
_A10S = {"Standard_NV36ads_A10_v5", "Standard_NV36adms_A10_v5", "Standard_NV72ads_A10_v5"}
_NC_NV = _T4S | _V100S | _A100S | _H100S | _A10S

# Region -> sizes priced there in the SkyPilot catalog above (Price column not empty), its US regions only: every
# NC and NV size in all three; ND96asr_v4 in eastus (also westus2, southcentralus); ND96amsr_A100_v4 and
# ND96isr_H100_v5 in eastus and eastus2.
REGION_INSTANCES: dict[str, frozenset[str]] = {
    "eastus": frozenset(_NC_NV | {"Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4", "Standard_ND96isr_H100_v5"}),
    "eastus2": frozenset(_NC_NV | {"Standard_ND96amsr_A100_v4", "Standard_ND96isr_H100_v5"}),
    "westus3": frozenset(_NC_NV),
}


def instances_in(region: str) -> frozenset[str] | None:
    """The sizes offered in `region`, or None where the table does not know the region (westeurope among them):
    "not known", never "none offered"."""
    return REGION_INSTANCES.get(region)


def total_gpu_memory_gib(name: str) -> float:
    """GPU memory of one VM of size `name`, all its GPUs together. KeyError for a size not in INSTANCES."""
    instance = INSTANCES[name]
    return GPUS[instance.gpu].memory_gib * instance.gpu_count


def quota_instances(name: str, instances: int) -> int:
    """The instances' worth of family quota a deployment of `instances` needs: ceil(1.2 x instances), or just
    `instances` on a size exempt from the upgrade reserve (RESERVE_EXEMPT)."""
    if name in RESERVE_EXEMPT:
        return instances
    # The 1e-9 keeps 10 x 1.2 = 12.000000000000002 at 12.
    return math.ceil(instances * (1 + UPGRADE_RESERVE) - 1e-9)


def quota_vcpus(name: str, instances: int) -> int:
    """vCPUs of the size's family quota a deployment of `instances` instances needs, the upgrade reserve included."""
    return quota_instances(name, instances) * INSTANCES[name].vcpus
