"""Kubernetes clusters the team runs itself: GPU servers on-prem (vLLM) or CPU-only edge clusters (llama.cpp),
the `kubernetes` target kind.

The cluster is the platform (`kubernetes:` in the stack config: how to reach it, its version, what its hours cost
the owner, the optional GPU Operator); each target is one model served in its own namespace
(components/k8s/serving.py, imported only when declared). On-prem hardware has no price list: the owner's rates
per GPU-hour and node-hour price it, the same way the clouds' list prices do.

Weights come from the Hub, from a bucket of the team's (s3://, gs://: an init container fetches them onto the
model cache with the key of the Secret `weightsSecret` names) or from a claim of the namespace (pvc://: mounted
read-only); LoRA adapters are served beside the model (vLLM on GPUs, llama.cpp on CPUs).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from ..catalog import kubernetes as facts_k8s
from ..catalog.cpus import CPUS
from ..catalog.engines import ENGINES, FP8_ARCHS
from ..catalog.gpus import GPUS, NVIDIA_GPUS
from ..catalog.kubernetes import BYTES_QUANTITY, CPU_QUANTITY, DNS_LABEL, DNS_SUBDOMAIN
from ..catalog.models import MODELS
from ..catalog.serving import cpus_of
from ..cost_rules import (
    HOURS_PER_MONTH,
    Ctx,
    Estimate,
    LineItem,
    Plan,
    Resource,
    Serving,
    flat,
    lora_of,
    plan_replicas,
    replica_hours,
)
from ..schema import MISSING, PROJECT, EnvironmentSpec, ModelSpec, Problem, Slug, Strict, does_not_fit, no_fp8
from ..sizing import GIB, Fit, Hardware, LoraSlots, startup_timeout_seconds, weights_bytes
from .base import Endpoint, HostShape, TargetKind, target_problem
from .cluster import CLUSTER, KubernetesCluster

if TYPE_CHECKING:
    import pulumi

    from ..k8s.observability import AlertThresholds
    from ..sizing_options import Host, Lookup

_BYTES = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
GPU_COUNTS = (1, 2, 4, 8)
# Startup budget of a CPU engine: the GGUF file is already on the volume (an init container fetched it), so only
# loading (mmap) and a first evaluation remain.
CPU_WARMUP_S = 30
STARTUP_BOUNDS_S = (60, 7200)


def bytes_of(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity).groups()  # type: ignore[union-attr]
    return float(number) * _BYTES[unit]


def gib(n_bytes: float) -> str:
    """A byte count as a whole number of GiB, rounded up (a quantity Kubernetes takes)."""
    return f"{math.ceil(n_bytes / GIB)}Gi"


# ---------------------------------------------------------------------------------------------------------
# Config: the cluster (platform) and the target


class Toleration(Strict):
    key: str = Field(pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9._-]{1,63}$")
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Resources(Strict):
    cpu: str = Field(pattern=CPU_QUANTITY)
    """CPU request and limit of the serving container, e.g. "8" or "3500m"."""
    memory: str = Field(pattern=BYTES_QUANTITY)
    """Memory request and limit, e.g. "32Gi" (it also bounds /dev/shm, a Memory volume)."""


class KubernetesScaling(Strict):
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=1, ge=1, le=100)
    metric: Literal["queue-depth", "cpu"] = "queue-depth"
    """`queue-depth`: KEDA on the engine's waiting requests (vLLM); `cpu`: an HPA on CPU use (llama.cpp)."""
    target_waiting_requests: int = Field(default=facts_k8s.QUEUE_DEPTH_THRESHOLD, ge=1)
    target_cpu_percent: int = Field(default=70, ge=10, le=100)


class ModelCache(Strict):
    size: str | None = Field(default=None, pattern=BYTES_QUANTITY)
    """Default: the weights, compile caches and room for one revision update."""
    storage_class: str | None = Field(default=None, pattern=DNS_SUBDOMAIN, max_length=253)
    """Default: the cluster's default class."""
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce"] = "ReadWriteMany"
    """ReadWriteMany lets replicas on several nodes share one cache; ReadWriteOnce attaches to one node."""


class Ingress(Strict):
    host: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)
    class_name: str = Field(default="nginx", pattern=DNS_SUBDOMAIN, max_length=253)
    cluster_issuer: str | None = Field(default=None, pattern=DNS_SUBDOMAIN, max_length=253)
    """A cert-manager ClusterIssuer that issues the TLS certificate; or name an existing `tlsSecret`."""
    tls_secret: str | None = Field(default=None, pattern=DNS_SUBDOMAIN, max_length=253)


class Dashboards(Strict):
    """Grafana dashboards of the target (an overview; on vLLM also the KV cache) in a ConfigMap labelled
    `grafana_dashboard: "1"`, which kube-prometheus-stack's Grafana sidecar loads."""

    namespace: Literal["target", "monitoring"] = "target"
    """Where the ConfigMap goes: the target's namespace (for a sidecar that searches every namespace, as
    kube-prometheus-stack's does since its chart 45.12.0: `searchNamespace: ALL`), or the cluster's
    `monitoringNamespace` (for a sidecar that searches only Grafana's own)."""


class Alerts(Strict):
    """Alerting rules of the target (a Prometheus Operator PrometheusRule in its namespace), each firing after its
    condition held `forMinutes`. A llama.cpp target has no engine series: its latency alert is on the adapter's
    request duration, its queue alert on the adapter's requests in flight, and it has no KV-cache alert."""

    error_rate_percent: float = Field(default=5, gt=0, le=100)
    """Share of the OpenAI routes' requests answered 5xx over 5 minutes."""
    ttft_p95_seconds: float | None = Field(default=None, gt=0, le=600)
    """vLLM: the 95th percentile of the time to first token over 5 minutes. Default: the usage's
    `maxTimeToFirstTokenSeconds` (2 s when it has none)."""
    request_p95_seconds: float | None = Field(default=None, gt=0, le=3600)
    """llama.cpp: the 95th percentile of the adapter's request duration over 5 minutes. Default: the usage's
    `maxTimeToFirstTokenSeconds` plus its `outputTokensPerRequest` at `minTokensPerSecondPerStream`."""
    queue_depth: int | None = Field(default=None, ge=1, le=10_000)
    """Requests waiting on the busiest replica. Default: twice `scaling.targetWaitingRequests` on vLLM (the
    autoscaler is not keeping up: at maxReplicas, or replicas not starting); 4 on llama.cpp."""
    kv_cache_percent: float = Field(default=90, gt=0, le=100)
    """vLLM: KV-cache use on the fullest replica (past it, requests wait or are preempted)."""
    restarts_per_hour: int = Field(default=2, ge=0, le=100)
    """Container restarts (kube-state-metrics) or engine restarts by the adapter in an hour, more than which
    alert."""
    for_minutes: int = Field(default=10, ge=1, le=1440)


DEFAULT_TTFT_S = 2.0
DEFAULT_CPU_QUEUE = 4
DIGEST_HELP = ("the digest the push printed (`docker buildx build ... --push --metadata-file build.json`: its "
               "`containerimage.digest`), or `docker buildx imagetools inspect <registry>/<image>:<tag>`; as "
               "sha256:<64 hex>")


class WeightsSecret(Strict):
    """The object-store key the pods read s3:// and gs:// sources with: an existing Secret of the target's namespace
    (create it after the namespace exists, e.g. `kubectl create secret generic team-weights -n <namespace>
    --from-literal=AWS_ACCESS_KEY_ID=... --from-literal=AWS_SECRET_ACCESS_KEY=...`), mounted as files in the
    init containers that fetch, never in the stack or an environment variable. An S3-compatible key pair: an AWS
    access key, a Cloud Storage HMAC key (its XML API), or MinIO's."""

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)
    """The Secret; its keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN, optional)."""
    endpoint: str | None = Field(default=None, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$")
    """The S3-compatible endpoint, e.g. https://minio.dc1.example.internal:9000. Default: AWS S3 in `region` for
    s3://, https://storage.googleapis.com for gs://."""
    region: str | None = Field(default=None, pattern=r"^[a-z0-9-]{2,32}$")
    """The region requests are signed for: the bucket's (AWS refuses another). Default: us-east-1 for s3://,
    `auto` for gs://; MinIO: its configured region (us-east-1 unless set)."""
    egress_cidr: str | None = Field(default=None, pattern=r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$")
    """The store's addresses when they are private (MinIO on the site's network): the NetworkPolicy admits HTTPS
    to public addresses only, so the pods may reach these on the endpoint's port. Unset for a public store."""


class KubernetesTarget(Strict):
    kind: Literal["kubernetes"]
    name: Slug
    model: str
    """The `name` of an entry in `models`."""
    namespace: str | None = Field(default=None, pattern=DNS_LABEL)
    """Default: <environment>-<name>."""
    gpu: str | None = None
    """The GPU of the nodes it runs on (a catalog name: L4, L40S, A100-80GB, H100, ...); unset: CPU-only."""
    gpu_count: int = Field(default=0, ge=0)
    """GPUs per replica (`nvidia.com/gpu`)."""
    cpu_type: str | None = None
    """For CPU-only targets: the nodes' CPU (components/catalog/cpus.py), for the throughput estimate."""
    concurrency: int = Field(default=1, ge=1, le=1024)
    resources: Resources
    node_selector: dict[str, str] = {}
    tolerations: list[Toleration] = []
    scaling: KubernetesScaling = KubernetesScaling()
    model_cache: ModelCache = ModelCache()
    shm_size: str | None = Field(default=None, pattern=BYTES_QUANTITY)
    """/dev/shm (a Memory volume, counted in the memory limit). Default: 8Gi with GPUs, 64Mi without."""
    ingress: Ingress | None = None
    service_monitor: bool = False
    """A Prometheus Operator ServiceMonitor for the adapter's and the engine's metrics."""
    dashboards: Dashboards | None = None
    """Grafana dashboards (`{}` for the defaults); unset: none. Needs `serviceMonitor`."""
    alerts: Alerts | None = None
    """Alerting rules (`{}` for the default thresholds); unset: none. Needs `serviceMonitor`."""
    allow_from_namespaces: list[str] = Field(default=[], max_length=50)
    """Namespaces whose pods may call the Service (the NetworkPolicy denies everyone else)."""
    api_keys: list[Slug] = Field(default=["default"], min_length=1, max_length=50)
    """Ids of the API keys the OpenAI routes accept; each key is generated and kept as a secret."""
    registry: str = Field(pattern=r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)*$")
    """Where our serving images are pushed (`selfhost render` prints the build commands)."""
    image_digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    """Pin the image by digest (else the content tag of containers/); required in a `production` tier stack."""
    startup_timeout_seconds: int | None = Field(default=None, ge=60, le=7200)
    """The startup probe's budget; default sized from the model (download, load, warm-up)."""
    image: Literal["selfhost"] = "selfhost"
    weights_secret: WeightsSecret | None = None
    """Required when the model or an adapter comes from s3:// or gs://: the Secret and endpoint they are read with
    (pvc:// sources are mounted, the Hub needs no key)."""

    @model_validator(mode="after")
    def _namespaces(self) -> KubernetesTarget:
        bad = [n for n in self.allow_from_namespaces if not re.fullmatch(DNS_LABEL, n)]
        if bad:
            raise ValueError(f"allowFromNamespaces: {bad[0]!r} is not a namespace name (a DNS label)")
        return self


def _weights_problems(env: EnvironmentSpec, index: int, t: KubernetesTarget, model: ModelSpec) -> list[Problem]:
    """A bucket source needs the Secret its key is in, and one store per target (one key, one endpoint)."""
    problems: list[Problem] = []
    at = env.models.index(model)
    sources = [("source", model.source, model.location),
               *((f"adapters[{j}].source", a.source, a.location) for j, a in enumerate(model.adapters))]
    buckets = [(key, source, loc) for key, source, loc in sources if loc.scheme in ("s3", "gs")]
    if buckets and t.weights_secret is None:
        key, source, _ = buckets[0]
        problems.append(target_problem(
            index, "weightsSecret", MISSING, f"models[{at}].{key} {source!r} is a bucket: the pods read it with an "
            "access key kept in a Kubernetes Secret of the target's namespace (never in the stack)",
            "{name: <Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY>, endpoint?, region?, egressCidr?}"))
    if len({loc.scheme for _, _, loc in buckets}) > 1:
        problems.append(target_problem(
            index, "weightsSecret", t.weights_secret.name if t.weights_secret else MISSING,
            f"models[{at}] reads both s3:// and gs:// sources: a target reads one object store (one key, one "
            "endpoint)", "sources in one store"))
    if t.weights_secret is not None and not buckets:
        problems.append(target_problem(
            index, "weightsSecret", t.weights_secret.model_dump(by_alias=True, exclude_none=True),
            f"no source of models[{at}] or its adapters is a bucket (s3:// or gs://): nothing reads it", "unset"))
    return problems


# ---------------------------------------------------------------------------------------------------------
# Sizing


def cpu_fit(model: ModelSpec, facts: Any, concurrency: int, memory_bytes: float, shm_bytes: float) -> Fit:
    """llama.cpp on CPU: the weights (mapped from the file), the KV cache of the context it allocates, every LoRA
    adapter (llama.cpp loads them all, no slots: sized as vLLM's, at the largest rank, 16-bit), and the runtime,
    against the container's memory limit less /dev/shm."""
    lora = LoraSlots(len(model.adapters), model.max_adapter_rank) if model.adapters else None
    return Fit(weights_gib=weights_bytes(facts, model.quantization) / GIB,
               kv_cache_gib=facts.kv_bytes_per_token() * model.max_context * concurrency / GIB,
               overhead_gib=0.5, available_gib=(memory_bytes - shm_bytes) / GIB,
               adapters_gib=lora.bytes(facts) / GIB if lora else 0.0, lora=lora)


def startup_budget(model: ModelSpec, facts: Any) -> int:
    """The startup probe's budget: GPU engines download and load in the container; the CPU engine's file, and
    weights from a bucket, are fetched by an init container first (and a volume's are there), so only loading and
    warm-up count."""
    if ENGINES[model.engine].gguf:
        return startup_timeout_seconds(facts, model.quantization, "hub", STARTUP_BOUNDS_S, download=False,
                                       warmup_s=CPU_WARMUP_S)
    return startup_timeout_seconds(facts, model.quantization, "hub", STARTUP_BOUNDS_S,
                                   download=model.location.scheme == "hub")


def cache_bytes(model: ModelSpec, facts: Any) -> float:
    """The model-cache volume: the weights twice (a revision update downloads beside the old one) plus 10 GiB for
    compile caches."""
    return 2 * weights_bytes(facts, model.quantization) + 10 * GIB


def shm_size(target: KubernetesTarget) -> str:
    return target.shm_size or ("8Gi" if target.gpu else "64Mi")


def shm_bytes(target: KubernetesTarget) -> float:
    return bytes_of(shm_size(target))


def alert_thresholds(env: EnvironmentSpec, t: KubernetesTarget) -> AlertThresholds:
    """The target's `alerts` with their defaults resolved from the usage and the scaling config."""
    from ..k8s.observability import AlertThresholds

    a = t.alerts
    assert a is not None
    usage = env.usage
    ttft = usage.max_time_to_first_token_seconds or DEFAULT_TTFT_S
    decode = (usage.output_tokens_per_request / usage.min_tokens_per_second_per_stream
              if usage.min_tokens_per_second_per_stream else 60.0)
    gguf = ENGINES[env.model(t.model).engine].gguf
    return AlertThresholds(
        error_rate=a.error_rate_percent / 100, ttft_p95_seconds=a.ttft_p95_seconds or ttft,
        request_p95_seconds=a.request_p95_seconds or round(ttft + decode, 1),
        queue_depth=a.queue_depth or (DEFAULT_CPU_QUEUE if gguf else 2 * t.scaling.target_waiting_requests),
        kv_cache_use=a.kv_cache_percent / 100, restarts_per_hour=a.restarts_per_hour, for_minutes=a.for_minutes)


# ---------------------------------------------------------------------------------------------------------
# Cost


def _autoscaler_bounds(r: Resource, ctx: Ctx) -> tuple[int, int]:
    hpa = ctx.sibling(r, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    if hpa is not None:
        spec = hpa.inputs.get("spec") or {}
        return int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1))
    scaled = ctx.sibling(r, "kubernetes:keda.sh/v1alpha1:ScaledObject")
    if scaled is not None:
        spec = scaled.inputs.get("spec") or {}
        return int(spec.get("minReplicaCount", 0)), int(spec.get("maxReplicaCount", 100))
    replicas = int((r.inputs.get("spec") or {}).get("replicas", 1))
    return replicas, replicas


def _router(r: Resource, ctx: Ctx) -> list[LineItem]:
    """The router's pods: their CPU cores around the clock, at the owner's rate per core-hour."""
    spec = r.inputs.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    containers = (spec.get("template") or {}).get("spec", {}).get("containers") or [{}]
    cores = cpus_of(str(((containers[0].get("resources") or {}).get("requests") or {}).get("cpu", "1")))
    name = ctx.regions.get("kubernetes", "cluster")
    return [ctx.item(r, "kubernetes", "cpu-hour", "cpu", "core-hour", flat(replicas * cores * HOURS_PER_MONTH),
                     f"router: {replicas} x {cores:g} CPU on {name}",
                     "set kubernetes.cost.cpuHourUsd to price it" if ctx.price("kubernetes", "cpu-hour", "cpu")[0]
                     is None else "")]


def _deployment(r: Resource, ctx: Ctx, est: Estimate) -> list[LineItem]:
    """Replica-hours at the replicas the usage needs, priced at the owner's rates: GPU-hours and node-hours. The
    serving Deployment carries what it serves and on what in its annotations; the router's says so."""
    notes = (r.inputs.get("metadata") or {}).get("annotations") or {}
    if notes.get("selfhost.dev/role") == "router":
        return _router(r, ctx)
    if "selfhost.dev/model" not in notes:
        return []
    model_id, quantization = notes["selfhost.dev/model"], notes.get("selfhost.dev/quantization", "none")
    gpu, cpu = GPUS.get(notes.get("selfhost.dev/gpu", "")), CPUS.get(notes.get("selfhost.dev/cpu", ""))
    containers = ((r.inputs.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
    limits = (containers[0].get("resources") or {}).get("limits") or {}
    count = int(limits.get(facts_k8s.GPU_RESOURCE, 0))
    low, high = _autoscaler_bounds(r, ctx)
    # A checkpoint of the team's own is sized by the catalog model it was fine-tuned from.
    facts = MODELS.get(model_id) or MODELS.get(notes.get("selfhost.dev/base", ""))
    engine = ENGINES.get(notes.get("selfhost.dev/engine", ""))
    streams = engine.max_streams if engine and engine.max_streams else None
    if gpu is not None:
        host: Hardware | None = Hardware.of_gpu(gpu, max(count, 1))
    elif cpu is not None:
        share = min(1.0, cpus_of(str(limits.get("cpu", cpu.cores))) / cpu.cores)
        host = Hardware(bytes_of(limits.get("memory", "0")) / GIB, cpu.bandwidth_gb_s, cpu.fp32_tflops * share,
                        cpu=True)
    else:
        host = None
    kv_bytes = 1.0 if notes.get("selfhost.dev/kv-cache") == "fp8" else 2.0
    plan = Plan(low, low, None) if host is None else plan_replicas(
        facts, host, low, high, ctx.usage, quantization, streams, kv_bytes, lora_of(notes, "selfhost.dev/lora"))
    hours = replica_hours((low, plan.expected, high), ctx.usage)
    name = ctx.regions.get("kubernetes", "cluster")
    items = []
    if count:
        items.append(ctx.item(r, "kubernetes", "gpu-hour", "gpu", "gpu-hour",
                              (hours[0] * count, hours[1] * count, hours[2] * count),
                              f"{count} x {gpu.name if gpu else 'GPU'} per replica x {low}..{high} on {name}"))
    items.append(ctx.item(r, "kubernetes", "node-hour", "node", "replica-hour", hours,
                          f"the rest of a replica's server x {low}..{high} on {name}"))
    gpu_usd, node_usd = (items[0].unit_usd if count else 0.0), items[-1].unit_usd
    replica_usd = None if gpu_usd is None or node_usd is None else gpu_usd * count + node_usd
    est.serving.append(Serving(r.name, model_id, (low, plan.expected, high), plan, replica_usd))
    return items


# ---------------------------------------------------------------------------------------------------------
# The kind


def owned_hosts(region: str, lookup: Lookup) -> list[Host]:
    """GPU servers of every catalog GPU at 1, 2, 4 and 8 GPUs, priced at the owner's rates where `lookup` knows
    them (`selfhost size --cloud kubernetes --gpu-hour-usd`; a cluster's `cost` in a stack)."""
    from ..catalog.pricing import Price
    from ..sizing_options import Host

    gpu_hour = lookup("kubernetes", "gpu-hour", region, "gpu")
    node_hour = lookup("kubernetes", "node-hour", region, "node")
    return [Host("kubernetes", "kubernetes", f"{count} x {gpu.name}", region or "on-prem", gpu, count,
                 gpu.memory_gib * count,
                 None if gpu_hour is None else Price(gpu_hour.usd * count + (node_hour.usd if node_hour else 0.0),
                                                     "hour", gpu_hour.source, gpu_hour.as_of))
            for gpu in NVIDIA_GPUS.values() for count in GPU_COUNTS]


class Kubernetes(TargetKind):
    kind = "kubernetes"
    config = KubernetesTarget
    platform = "kubernetes"
    weight_schemes = ("hub", "s3", "gs", "pvc")
    summary = "a Kubernetes cluster of your own (GPU nodes with vLLM, or CPU-only with llama.cpp)"
    engines = ("vllm", "llamacpp")
    cost_rules: ClassVar[dict[str, Any]] = {"kubernetes:apps/v1:Deployment": _deployment}
    free_types = frozenset({
        "kubernetes:core/v1:ServiceAccount", "kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:Service", "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:policy/v1:PodDisruptionBudget", "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:networking.k8s.io/v1:Ingress", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "kubernetes:keda.sh/v1alpha1:ScaledObject", "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
        "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
        "random:index/randomPassword:RandomPassword",
    })

    def platform_needs(self, target: Any) -> frozenset[str]:
        return frozenset({"gpu"} if target.gpu else set())

    def validate(self, env: EnvironmentSpec, index: int, target: Any) -> list[Problem]:
        t: KubernetesTarget = target
        problems: list[Problem] = []
        p = lambda key, *rest: problems.append(target_problem(index, key, *rest))  # noqa: E731
        cluster: KubernetesCluster | None = CLUSTER.of(env).cluster  # its absence is the platform's problem
        model = env.model(t.model)
        engine = ENGINES[model.engine]
        if t.gpu is None:
            if t.gpu_count:
                p("gpuCount", t.gpu_count, "a CPU-only target (no `gpu` set) has no GPUs to ask for",
                  "0, or set gpu to the nodes' GPU")
            if not engine.gguf:
                p("gpu", MISSING, f"engine '{model.engine}' (our vLLM image) needs NVIDIA GPUs",
                  ", ".join(NVIDIA_GPUS) + "; or serve a GGUF model with engine llamacpp on CPUs")
            if t.cpu_type is not None and t.cpu_type not in CPUS:
                p("cpuType", t.cpu_type, "unknown CPU", ", ".join(CPUS))
            if t.scaling.metric == "queue-depth":
                p("scaling.metric", "queue-depth", "llama.cpp's server exports no queue metric", "cpu")
        else:
            if t.gpu not in NVIDIA_GPUS:
                why = ("a Cloud TPU chip: our images and the cluster's `nvidia.com/gpu` resource are NVIDIA's (GKE TPU "
                       "slices are not a Kubernetes target yet)") if t.gpu in GPUS else "unknown GPU"
                p("gpu", t.gpu, why, ", ".join(NVIDIA_GPUS))
                return problems
            if t.gpu_count not in GPU_COUNTS:
                p("gpuCount", t.gpu_count, f"a GPU target needs GPUs per replica ({t.gpu} nodes)",
                  ", ".join(map(str, GPU_COUNTS)))
            if engine.gguf:
                p("gpu", t.gpu, "our llama.cpp image is a CPU build", "unset (CPU-only), or engine vllm")
            if t.cpu_type is not None:
                p("cpuType", t.cpu_type, "only for CPU-only targets", "unset")
        if t.scaling.metric == "queue-depth":
            if cluster is not None and cluster.prometheus_url is None:
                problems.append(Problem(f"{PROJECT}:kubernetes.prometheusUrl", MISSING,
                                        f"targets[{index}] scales on queue depth, which KEDA reads from Prometheus",
                                        "the Prometheus URL, e.g. http://prometheus-operated.monitoring:9090"))
            if not t.service_monitor:
                p("serviceMonitor", False, "queue-depth scaling needs the engine's metrics scraped", "true")
        for section, present in (("dashboards", t.dashboards), ("alerts", t.alerts)):
            if present is not None and not t.service_monitor:
                p(section, present.model_dump(by_alias=True), f"{section} read the adapter's and the engine's "
                  "metrics, which only a ServiceMonitor has scraped", "serviceMonitor: true, or unset it")
        if env.tier == "production" and t.image_digest is None:
            p("imageDigest", MISSING, "a production stack runs every image by digest, so a node pulls exactly what "
              "was built and tested (a tag can move)", DIGEST_HELP)
        if not t.ingress and not t.allow_from_namespaces and not env.routed(t.name):
            p("allowFromNamespaces", [], "nothing could reach the model: the NetworkPolicy admits only an Ingress "
              "controller and these namespaces", "namespaces of the callers, or set ingress, or route to it")
        if t.ingress and not (t.ingress.cluster_issuer or t.ingress.tls_secret):
            p("ingress.clusterIssuer", MISSING, "an Ingress without TLS would carry API keys in clear text",
              "a cert-manager ClusterIssuer, or ingress.tlsSecret")
        problems += _weights_problems(env, index, t, model)
        if t.model_cache.access_mode == "ReadWriteOnce" and "kubernetes.io/hostname" not in t.node_selector:
            p("modelCache.accessMode", "ReadWriteOnce", "a ReadWriteOnce volume attaches to one node, so replicas "
              "(and the surge replica of a rolling update) on another node would never start",
              "ReadWriteMany, or pin the pods to one node with nodeSelector kubernetes.io/hostname")
        memory, shm = bytes_of(t.resources.memory), shm_bytes(t)
        if shm >= memory:
            p("shmSize", shm_size(t), f"/dev/shm counts in the memory limit ({t.resources.memory})",
              "less than resources.memory")
        facts = model.resolved_facts()
        if facts is None:
            return problems
        if t.gpu is not None and t.gpu_count in GPU_COUNTS:
            gpu = GPUS[t.gpu]
            if model.quantization == "fp8" and gpu.arch not in FP8_ARCHS:
                p("gpu", t.gpu, no_fp8(gpu.name, model), ", ".join(g.name for g in NVIDIA_GPUS.values()
                                                                   if g.arch in FP8_ARCHS))
            problems += self.fit_problems(env, index, t, facts, "gpuCount", t.gpu_count, t.gpu_count,
                                          gpu.memory_gib * t.gpu_count, f"{t.gpu_count} x {t.gpu}", None)
        elif t.gpu is None and engine.gguf:
            fit = cpu_fit(model, facts, t.concurrency, memory, shm)
            if not fit.fits:
                p("resources.memory", t.resources.memory, does_not_fit(model, t.concurrency, fit, "the container"),
                  f"at least {gib(fit.required_gib * GIB + shm)}")
        needed = startup_budget(model, facts)
        if t.startup_timeout_seconds is not None and t.startup_timeout_seconds < needed:
            p("startupTimeoutSeconds", t.startup_timeout_seconds,
              f"shorter than the model's estimated download, load and warm-up ({needed} s): the startup probe would "
              "restart it before it serves", f"{needed}..{STARTUP_BOUNDS_S[1]}, or unset")
        if t.model_cache.size is not None and bytes_of(t.model_cache.size) < weights_bytes(facts, model.quantization):
            p("modelCache.size", t.model_cache.size, f"smaller than the weights of '{model.name}'",
              f"at least {gib(weights_bytes(facts, model.quantization))}; default {gib(cache_bytes(model, facts))}")
        return problems

    def declare(self, env: EnvironmentSpec, target: Any, foundation: Any,
                hf_token: pulumi.Output[str] | None) -> Endpoint:
        from ..k8s.cluster import labels_of
        from ..k8s.serving import (
            CacheVolume,
            ContainerResources,
            IngressRoute,
            ModelServing,
            ModelServingArgs,
            ServingScaling,
            WeightsAccess,
        )

        t: KubernetesTarget = target
        model = env.model(t.model)
        facts = model.resolved_facts()
        assert facts is not None  # validated
        startup = t.startup_timeout_seconds or startup_budget(model, facts)
        s, cache, ingress = t.scaling, t.model_cache, t.ingress
        namespace, cluster = t.namespace or f"{env.name}-{t.name}", foundation.config
        serving = ModelServing(f"{env.name}-{t.name}", ModelServingArgs(
            environment=env.name, foundation=foundation, model=model, name=t.name,
            namespace=namespace, registry=t.registry, image_digest=t.image_digest,
            gpu=t.gpu, gpu_count=t.gpu_count, cpu_type=t.cpu_type,
            resources=ContainerResources(cpu=t.resources.cpu, memory=t.resources.memory),
            node_selector=dict(t.node_selector),
            tolerations=tuple(tol.model_dump(exclude_none=True) for tol in t.tolerations),
            scaling=ServingScaling(metric=s.metric, min_replicas=s.min_replicas, max_replicas=s.max_replicas,
                                   target_waiting_requests=s.target_waiting_requests,
                                   target_cpu_percent=s.target_cpu_percent),
            cache=CacheVolume(size=cache.size or gib(cache_bytes(model, facts)), access_mode=cache.access_mode,
                              storage_class=cache.storage_class),
            shm_size=shm_size(t),
            ingress=IngressRoute(host=ingress.host, class_name=ingress.class_name,
                                 cluster_issuer=ingress.cluster_issuer, tls_secret=ingress.tls_secret)
            if ingress else None,
            service_monitor=t.service_monitor, allow_from_namespaces=tuple(t.allow_from_namespaces),
            dashboards_namespace=None if t.dashboards is None else (
                namespace if t.dashboards.namespace == "target" else cluster.monitoring_namespace),
            alerts=None if t.alerts is None else alert_thresholds(env, t),
            api_keys=tuple(t.api_keys), startup_timeout_seconds=startup,
            labels=labels_of(self.identity_tags(env, t)), hf_token=hf_token,
            router_namespace=env.router.namespace_in(env.name) if env.routed(t.name) else None,
            weights=None if t.weights_secret is None else WeightsAccess(
                secret=t.weights_secret.name, endpoint=t.weights_secret.endpoint, region=t.weights_secret.region,
                egress_cidr=t.weights_secret.egress_cidr)))
        return Endpoint(
            name=t.name, kind=self.kind, platform=self.platform, region=foundation.name, model=model.id,
            invoke_url=f"{serving.base_url}/chat/completions", openai_base_url=serving.base_url, auth=self.auth(t),
            host=HostShape(t.gpu or t.cpu_type or "cpu", t.gpu, t.gpu_count), min_replicas=t.scaling.min_replicas,
            max_replicas=t.scaling.max_replicas, image=serving.image, startup_timeout_seconds=startup,
            details={"namespace": serving.namespace, "service": serving.service_name,
                     "inClusterUrl": serving.in_cluster_url, "apiKeys": serving.api_keys},
            router_base_url=f"{serving.in_cluster_url}/v1" if env.routed(t.name) else None,
            router_key=serving.router_key,
        )

    def auth(self, target: Any) -> str:
        return "api-key"  # our adapter's API keys

    def hosts(self, region: str, lookup: Lookup) -> list[Host]:
        return owned_hosts(region, lookup)
