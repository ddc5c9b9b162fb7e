"""Cloud TPU facts for serving: the chips (v5e, v6e), the single-host machine types Vertex AI prediction and GKE
TPU slice node pools take, the GKE node labels, the regions, and what vLLM TPU (the tpu-inference backend) runs.

Every figure carries its source (a URL or repo@commit:path) and the day it was read; `published` says whether the
number is printed in the source as is, or derived (and how). Read 2026-12-08 unless a figure says otherwise.

Units: HBM capacity is in GiB because the sizing works in GiB. Google's chip pages print "16 GB" (v5e) and
"32 GB" (v6e); HBM is built in binary-sized stacks and Google prints the same kind of part as "32 GiB" on its
v3/v4 pages and "95 GiB" on v5p, so the page's GB is read as GiB (derived; a decimal reading would give 14.9 and
29.8 GiB). ICI bandwidth is one way, per chip, in GB/s: the pages give it bidirectional in GBps (v5e 400, v6e 800)
and, on older copies, as 1600 / 3200 Gbps; one way = bidirectional GBps / 2, and the Gbps figures / 8 give the
same 200 and 400 GB/s (derived).

Prices are not here: they are rows of pricing/data/gcp.csv (services gce-tpu and vertex-prediction-tpu, sku = the
generation, per chip-hour). Quotas are rows of data/quotas.csv (needs gce-tpus:<gen>, gce-tpus-spot:<gen>,
vertex-tpus:<gen>).
"""

from __future__ import annotations

from dataclasses import dataclass

READ = "2026-12-08"

V5E_PAGE = "https://docs.cloud.google.com/tpu/docs/v5e"
V6E_PAGE = "https://docs.cloud.google.com/tpu/docs/v6e.md.txt"
V5E_VM_TYPES = "https://docs.cloud.google.com/tpu/docs/v5e?hl=zh-cn (VM types table: ct5lp-hightpu-1t/4t/8t)"
VERTEX_TPU_PAGE = "https://docs.cloud.google.com/vertex-ai/docs/predictions/use-tpu"
TPU_ZONES_PAGE = "https://docs.cloud.google.com/tpu/docs/regions-zones.md.txt"
SAMPLES = "GoogleCloudPlatform/vertex-ai-samples@cc0d791ef25a4f8a9bbd9b6c9ef4928b8b96c35a"
VLLM_TPU_DOC = "vllm-project/vllm@21ec47b21ed6b34c993022081385a21e621eb2bc:docs/configuration/tpu.md"
TPU_INFERENCE = "vllm-project/tpu-inference@b8692ff01fa191343836996c27a39dc95f008b88"
TPU_RECIPES = "AI-Hypercomputer/tpu-recipes@c8cfe2f689081d36701a101cd73a70965d80926b"


@dataclass(frozen=True)
class Fact:
    """Where one figure comes from."""

    source: str
    published: bool
    note: str = ""
    read: str = READ


@dataclass(frozen=True)
class TpuChip:
    name: str
    """The GPUS-style catalog name used in allowedGpus and the host tables."""
    generation: str
    hbm_gib: float
    bandwidth_gb_s: float
    """HBM bandwidth per chip."""
    bf16_tflops: float
    int8_tops: float | None
    fp8_tflops: float | None
    """None: the generation has no fp8 matrix unit."""
    ici_gb_s: float
    """Inter-chip interconnect bandwidth per chip, one way."""
    facts: dict[str, Fact]


CHIPS: dict[str, TpuChip] = {
    "TPU-v5e": TpuChip(
        name="TPU-v5e", generation="v5e", hbm_gib=16.0, bandwidth_gb_s=819.0, bf16_tflops=197.0, int8_tops=393.0,
        fp8_tflops=None, ici_gb_s=200.0,
        facts={
            "hbm_gib": Fact(V5E_PAGE, False, "'HBM2 capacity and bandwidth | 16 GB, 819 GBps'; 16 GB read as 16 GiB "
                            "(see the module note)"),
            "bandwidth_gb_s": Fact(V5E_PAGE, True, "'16 GB, 819 GBps'; a later copy of the page "
                                   "(docs.cloud.google.com/tpu/docs/v5e?authuser=6) prints '800 GiBps' (= 859 GB/s): "
                                   "the lower, older 819 is kept"),
            "bf16_tflops": Fact(V5E_PAGE, True, "'Peak compute per chip (bf16) | 197 TFLOPs'"),
            "int8_tops": Fact("https://docs.cloud.google.com/tpu/docs/v5e?authuser=6", True,
                              "'Peak compute per chip (Int8) | 393 TOPs' (394 is quoted elsewhere as 2 x 197)"),
            "fp8_tflops": Fact(TPU_INFERENCE + ":README.md", False,
                               "no fp8 figure on the v5e page; tpu-inference's quantization table lists FP8 W8A8 and "
                               "W8A16 with hardware acceleration on 'v7' only, INT8 W8A8 on 'v5, v6'"),
            "ici_gb_s": Fact(V5E_PAGE, False, "'Bidirectional inter-chip interconnect (ICI) bandwidth (per chip) | "
                             "400 GBps' / 2 = 200 GB/s one way (older copies: 'Interchip Interconnect BW | 1600 Gbps' "
                             "= 200 GB/s)"),
        },
    ),
    "TPU-v6e": TpuChip(
        name="TPU-v6e", generation="v6e", hbm_gib=32.0, bandwidth_gb_s=1638.0, bf16_tflops=918.0, int8_tops=1836.0,
        fp8_tflops=None, ici_gb_s=400.0,
        facts={
            "hbm_gib": Fact(V6E_PAGE, False, "'HBM capacity per chip | 32 GB' read as 32 GiB (see the module note)"),
            "bandwidth_gb_s": Fact(V6E_PAGE, True, "'HBM bandwidth per chip | 1638 GBps' (earlier copies print 1640)"),
            "bf16_tflops": Fact(V6E_PAGE, True, "'Peak compute per chip (bf16) | 918 TFLOPs'"),
            "int8_tops": Fact(V6E_PAGE, True, "'Peak compute per chip (Int8) | 1836 TOPs'"),
            "fp8_tflops": Fact(TPU_INFERENCE + ":README.md", False,
                               "no fp8 figure on the v6e page (bf16 and Int8 only); tpu-inference accelerates FP8 "
                               "weights on 'v7' only. vLLM TPU does store an fp8 KV cache on v6e (see VLLM_TPU)"),
            "ici_gb_s": Fact(V6E_PAGE, False, "'Bidirectional inter-chip interconnect (ICI) bandwidth (per chip) | "
                             "800 GBps' / 2 = 400 GB/s one way"),
        },
    ),
}

GENERATION_CHIP = {c.generation: c.name for c in CHIPS.values()}


@dataclass(frozen=True)
class TpuMachine:
    name: str
    chip: str
    """Key of CHIPS."""
    chips: int
    topology: str
    vcpus: int
    memory_gib: float
    facts: dict[str, Fact]


def _v5e(name: str, chips: int, topology: str, vcpus: int, ram_gb: float) -> TpuMachine:
    return TpuMachine(name, "TPU-v5e", chips, topology, vcpus, ram_gb, {
        "chips/topology": Fact("https://cloud.google.com/tpu/docs/supported-versions?hl=zh_cn", True,
                               "serving types: 1x1, 2x2, 2x4 with 1, 4, 8 chips; AcceleratorType v5litepod-1/4/8 = "
                               "machine type (GKE API) ct5lp-hightpu-1t/4t/8t"),
        "vcpus/memory": Fact(V5E_VM_TYPES, True,
                             f"{name}: {vcpus} vCPUs, {ram_gb:g} GB RAM per VM (GB read as GiB, the machine-type "
                             "convention; the same 24/48, 112/192, 224/384 in Cyclenerd/google-cloud-pricing-cost-"
                             "calculator issue #89's machinetypes.csv)"),
    })


def _v6e(name: str, chips: int, topology: str, vcpus: int, ram_gb: float) -> TpuMachine:
    return TpuMachine(name, "TPU-v6e", chips, topology, vcpus, ram_gb, {
        "chips/topology": Fact(SAMPLES + ":notebooks/community/model_garden/"
                               "model_garden_pytorch_llama3_1_qwen3_deployment_tpu.ipynb", True,
                               "ct6e-standard-1t tpu_count 1 tpu_topo '1x1'; ct6e-standard-4t tpu_count 4 "
                               "tpu_topo '2x2'; 2x4 / 8 chips for ct6e-standard-8t from the v6e page's 8 chips per "
                               "host and tpu-recipes (`--topology` '1x1', '2x4')"),
        "vcpus/memory": Fact(
            "a public copy (find_string id 21793453403) of the table at "
            "https://docs.cloud.google.com/kubernetes-engine/docs/concepts/plan-tpus#choose-tpu-version: "
            "ct6e-standard-1t 44 vCPUs, 1 chip, 448 GiB, 2 NUMA nodes; -4t 180, 4, 720 GiB, 1; -8t 180, 8, 1440 GiB, 2",
            True,
            "vCPUs as that table; memory for 1t is 176, not its 448: a GKE CI generator (find_string id 59717059056) "
            "lists 176 / 720 / 1440 GB 'from the accelerator-optimized machine family documentation'; the two copies "
            "disagree on 1t only and the lower figure is kept (host RAM, not HBM; not used for the model fit)"),
    })


VERTEX_MACHINES: dict[str, TpuMachine] = {m.name: m for m in (
    _v5e("ct5lp-hightpu-1t", 1, "1x1", 24, 48.0),
    _v5e("ct5lp-hightpu-4t", 4, "2x2", 112, 192.0),
    _v5e("ct5lp-hightpu-8t", 8, "2x4", 224, 384.0),
    _v6e("ct6e-standard-1t", 1, "1x1", 44, 176.0),
    _v6e("ct6e-standard-4t", 4, "2x2", 180, 720.0),
    _v6e("ct6e-standard-8t", 8, "2x4", 180, 1440.0),
)}
VERTEX_MACHINES_FACT = Fact(
    VERTEX_TPU_PAGE, True,
    "'deploy your models to a single host Cloud TPU v5e, v6e, or TPU7x (Preview) for online inference'; "
    "'Only Cloud TPU version v5e, v6e, and TPU7x (tpu7x-standard-4t machine type) are supported'. The machine types "
    "are the GKE/Compute names of the single-host shapes; Vertex samples deploy ct5lp-hightpu-1t/4t (gcloud "
    "model_garden_utils CheckAcceleratorQuota) and ct6e-standard-1t/4t (vertex-ai-samples notebooks); 8t is the "
    "2x4 single-host shape of both generations, not seen in a Vertex sample (derived). TPU7x is left out (preview).")

# generation -> {topology: chips} for single-host GKE TPU slice node pools.
GKE_TOPOLOGIES: dict[str, dict[str, int]] = {
    "v5e": {"1x1": 1, "2x2": 4, "2x4": 8},
    "v6e": {"1x1": 1, "2x2": 4, "2x4": 8},
}
# generation -> topology -> GKE machine type of the node pool.
GKE_MACHINE_TYPES: dict[str, dict[str, str]] = {
    gen: {m.topology: m.name for m in VERTEX_MACHINES.values() if CHIPS[m.chip].generation == gen}
    for gen in GKE_TOPOLOGIES
}
# `cloud.google.com/gke-tpu-accelerator` node label value per generation.
GKE_ACCELERATOR_LABEL: dict[str, str] = {"v5e": "tpu-v5-lite-podslice", "v6e": "tpu-v6e-slice"}
GKE_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
GKE_ACCELERATOR_LABEL_KEY = "cloud.google.com/gke-tpu-accelerator"
GKE_RESOURCE = "google.com/tpu"
GKE_TAINT_KEY_EFFECT = ("google.com/tpu", "NoSchedule")
GKE_FACTS = Fact(
    "public manifests (find_string 'docker.io/vllm/vllm-tpu:'): nodeSelector "
    "'cloud.google.com/gke-tpu-topology: 2x2' + 'cloud.google.com/gke-tpu-accelerator: tpu-v5-lite-podslice', "
    "limits 'google.com/tpu: 4', toleration key 'google.com/tpu' operator Exists effect NoSchedule; "
    "tpu-v6e-slice / tpu-v5-lite-podslice as Pathways' WorkerType constants; docs.cast.ai/docs/tpu: "
    "'google.com/tpu=true:NoSchedule' taint", False,
    "second-hand: Google's 'Plan TPUs in GKE' page (cloud.google.com/kubernetes-engine/docs/concepts/plan-tpus) was "
    "found but its topology table not read; topologies/chips from the v5e serving table and the Vertex samples. "
    "The taint's value is not relied on: tolerate key google.com/tpu with operator Exists")

# region -> generations Vertex AI serves on TPU there.
VERTEX_TPU_REGIONS: dict[str, frozenset[str]] = {
    "us-central1": frozenset({"v5e", "v6e"}),
    "us-east5": frozenset({"v6e"}),
    "europe-west4": frozenset({"v5e", "v6e"}),
}
VERTEX_TPU_REGIONS_FACT = Fact(
    TPU_ZONES_PAGE + " (v6e: us-central1-b, us-east1-d, us-east5-a/-b, europe-west4-a; v5e: us-central1-a, "
    "us-south1-a, us-west1-c, us-west4-a); skypilot-org/skypilot-catalog@2c3d7ea7d76bf84cf80d382e946c1609571485fd:"
    "catalogs/v9/gcp/vms.csv prices tpu-v5litepod-1 in europe-west4-a/-b", False,
    "derived: Cloud TPU's zones for the generation within the regions this project targets; Vertex's own "
    "accelerator-by-region table (use-tpu links 'locations') was not read, so each entry is an assumption to check "
    "with `gcloud ai` before relying on it. us-east5 v5e is priced in SkyPilot's catalog but absent from the TPU "
    "zones page: left out")


@dataclass(frozen=True)
class VllmTpu:
    generations: frozenset[str]
    quantizations: dict[str, frozenset[str]]
    """generation -> weight formats vLLM TPU accelerates there (bf16 always)."""
    kv_cache_dtypes: frozenset[str]
    gke_image: str
    vertex_image: str
    xla_cache_env: str
    xla_cache_default: str
    cold_start_minutes: dict[str, float]
    facts: dict[str, Fact]


VLLM_TPU = VllmTpu(
    generations=frozenset({"v5e", "v6e"}),
    quantizations={"v5e": frozenset({"bf16", "int8-w8a8", "int8-w8a16", "awq-int4"}),
                   "v6e": frozenset({"bf16", "int8-w8a8", "int8-w8a16", "awq-int4"})},
    kv_cache_dtypes=frozenset({"bf16", "fp8"}),
    gke_image="docker.io/vllm/vllm-tpu:v0.12.0",
    vertex_image=("us-docker.pkg.dev/deeplearning-platform-release/vertex-model-garden/"
                  "vllm-inference-tpu.0-11.ubuntu2204.py312:model-garden.vllm-tpu-release_20251015.00_p0"),
    xla_cache_env="VLLM_XLA_CACHE_PATH",
    xla_cache_default="~/.cache/vllm/xla_cache",
    cold_start_minutes={},
    facts={
        "generations": Fact(TPU_INFERENCE + ":docs/getting_started/quickstart.md", True,
                            "'vLLM supports TPU v6e and v5e' (other copies of the install guide list 'TPU versions: "
                            "v7x, v6e, v5e')"),
        "quantizations": Fact(VLLM_TPU_DOC + " and " + TPU_INFERENCE + ":README.md", True,
                              "docs/configuration/tpu.md: 'v5e has int4/int8 hardware acceleration in the MXU', same "
                              "for v6e; 'Supported quantized formats ... [Jul '25]: INT8 W8A8, INT8 W8A16, FP8 KV "
                              "cache, [WIP] FP8 W8A8, [WIP] AWQ'. tpu-inference README release table: INT8 W8A8 "
                              "(compressed-tensor) and INT4 W4A16 (awq) accelerated on 'v5, v6'; FP8 W8A8/W8A16, "
                              "mxfp4, NVFP4 on 'v7' only; all marked 'Untested' (checkpoint loading only). No fp8 "
                              "weights on v5e/v6e"),
        "kv_cache_dtypes": Fact(VLLM_TPU_DOC, True, "'FP8 KV cache' supported; a GitHub report "
                                "(marin-community/marin#6133) notes '--kv-cache-dtype fp8 -> e5m2 on v6e'"),
        "gke_image": Fact(TPU_RECIPES + ":inference/trillium/vLLM/Llama3.x/README.md", True,
                          "'export DOCKER_URI=vllm/vllm-tpu:v0.12.0' ... 'The docker image is pinned here for users to "
                          "reproduce the results below' (v6e, Llama-3.1-8B on 1 chip). Docker Hub tags also include "
                          "dated nightlies (vllm/vllm-tpu:nightly-YYYYMMDD-...); digest not read"),
        "vertex_image": Fact(SAMPLES + ":notebooks/community/model_garden/model_garden_vllm_tpu_qwen3_deployment.ipynb",
                             True, "model.deploy(serving_container_image_uri=<this>, machine_type='ct6e-standard-1t') "
                             "(notebook last changed 2026-02-05). An older sample pins us-docker.pkg.dev/vertex-ai/"
                             "vertex-vision-model-garden-dockers/pytorch-vllm-serve:20250529_0917_tpu_experimental_RC00"),
        "xla_cache": Fact(VLLM_TPU_DOC, True,
                          "'pre-compiles the model for various common input shapes and saves these compiled graphs "
                          "to a cache on disk or remote storage (located at ~/.cache/vllm/xla_cache by default). This "
                          "process can range significantly, anywhere from a few minutes to an hour'; 'Use "
                          "VLLM_XLA_CACHE_PATH environment variable to write to shareable storage'"),
        "cold_start": Fact(TPU_RECIPES + ":inference/trillium/vLLM/", True,
                           "no cold-start figure in minutes found: Llama3.x README 'It takes a few minutes depending "
                           "on the model size to prepare the server'; Gemma4 README 'It takes about 10 minutes'. The "
                           "27.6 min v6e-4 Gemma figure (DESIGN.md section 7) was not found in tpu-recipes@c8cfe2f "
                           "(git grep '27.6'): unsourced, not recorded"),
    },
)


def machine(name: str) -> TpuMachine | None:
    return VERTEX_MACHINES.get(name)


def chip_of(machine_type: str) -> TpuChip | None:
    m = VERTEX_MACHINES.get(machine_type)
    return CHIPS[m.chip] if m else None


def gke_machine_type(generation: str, topology: str) -> str | None:
    """The single-host node-pool machine type of a generation and topology, None if GKE has no such shape."""
    return GKE_MACHINE_TYPES.get(generation, {}).get(topology)
