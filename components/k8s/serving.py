"""One model served on a Kubernetes cluster: our image (the adapter in front of vLLM on GPU nodes, or of llama.cpp on
CPUs) in a namespace of its own, locked down, cached, probed, autoscaled and reachable only as configured.

`manifests` builds every object as the Kubernetes API takes it (plain dicts, camelCase); `ModelServing` declares
exactly those. `selfhost render` writes them out from the previewed graph, so `kubectl apply` and `pulumi up` apply
the same objects.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import pulumi
import pulumi_random as random

from .. import litellm
from ..catalog import kubernetes as facts
from ..catalog.engines import ENGINES, lora_flags, vllm_flags
from ..catalog.gpus import GPUS
from ..catalog.serving import PROBE_PERIOD_S, cpus_of
from ..schema import AdapterSpec, ModelSpec
from ..serving_image import IMAGES, PROGRAMS, adapters_setting, content_tag, engine_args
from ..sizing import GPU_MEMORY_UTILIZATION, Hardware, engine_limits
from ..weights import Location
from .cluster import MANAGED, ROLES, ClusterFoundation, declare_object, locked_down, pulled
from .observability import AlertThresholds, Observed, dashboard_config_map, prometheus_rule

PORT = 8080
SECRETS_DIR = "/run/secrets/selfhost"
CACHE_DIR = "/cache"
GGUF_DIR = f"{CACHE_DIR}/gguf"
OBJECTS_DIR = f"{CACHE_DIR}/objects"
"""Where the init container puts what it fetches from buckets: {OBJECTS_DIR}/{s3|gs}/{bucket}/{key}."""
VOLUMES_DIR = "/weights"
"""Where `pvc://claim/path` sources are mounted, read-only: {VOLUMES_DIR}/{claim}/{path}."""
WEIGHTS_SECRET_DIR = "/run/secrets/weights"
"""The weights Secret's keys as files (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), in the fetching init containers
only: the serving container never sees the bucket's key."""
BUCKETS = ("s3", "gs")
# SIGTERM to SIGKILL: the adapter drains open requests for DRAIN_S (the last second ends open streams properly).
GRACE_S = 60
DRAIN_S = 55
# Pulumi waits this much longer than the startup probe's budget for a rollout to become ready.
ROLLOUT_MARGIN_S = 600


@dataclass(frozen=True)
class ContainerResources:
    cpu: str
    """CPU request and limit of the serving container, a Kubernetes quantity ("8", "3500m")."""
    memory: str
    """Memory request and limit ("32Gi"); /dev/shm, a Memory volume, counts in it."""


@dataclass(frozen=True)
class ServingScaling:
    metric: Literal["queue-depth", "cpu"]
    """`queue-depth`: KEDA on the engine's waiting requests (vLLM); `cpu`: an HPA on CPU use (llama.cpp)."""
    min_replicas: int
    max_replicas: int
    target_waiting_requests: int
    target_cpu_percent: int


@dataclass(frozen=True)
class CacheVolume:
    """The model-cache volume the replicas share."""

    size: str
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce"]
    storage_class: str | None
    """None: the cluster's default class."""


@dataclass(frozen=True)
class IngressRoute:
    """An Ingress with TLS in front of the Service."""

    host: str
    class_name: str
    cluster_issuer: str | None
    """A cert-manager ClusterIssuer that issues the certificate; or `tls_secret` names an existing one."""
    tls_secret: str | None


@dataclass(frozen=True)
class WeightsAccess:
    """How the init container reads s3:// and gs:// sources: an existing Secret of the namespace holding an
    S3-compatible access key pair, and the store's endpoint."""

    secret: str
    """The Secret's name; its keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) are mounted
    as files."""
    endpoint: str | None = None
    """None: AWS S3 in `region` for s3://, https://storage.googleapis.com for gs://."""
    region: str | None = None
    """None: us-east-1 for s3://, `auto` for gs://."""
    egress_cidr: str | None = None
    """A private store's addresses (MinIO on the site's network): the NetworkPolicy lets the pods reach them on
    the endpoint's port; public stores are reached as the Hub is (HTTPS to public addresses)."""


@dataclass(frozen=True)
class ModelServingArgs:
    environment: str
    foundation: ClusterFoundation
    model: ModelSpec
    name: str
    """The target's name: the Service, the Deployment and the objects beside them are named after it."""
    namespace: str
    registry: str
    """Where our serving images are pushed."""
    image_digest: str | None
    """Our image by digest; None: by the content tag of containers/."""
    gpu: str | None
    """The nodes' GPU (a catalog name); None: CPU-only."""
    gpu_count: int
    cpu_type: str | None
    """For CPU-only targets: the nodes' CPU (components/catalog/cpus.py), for the cost estimate."""
    resources: ContainerResources
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, str], ...]
    """As the pod spec takes them."""
    scaling: ServingScaling
    cache: CacheVolume
    shm_size: str
    ingress: IngressRoute | None
    service_monitor: bool
    """A Prometheus Operator ServiceMonitor for the adapter's and the engine's metrics."""
    allow_from_namespaces: tuple[str, ...]
    """Namespaces whose pods may call the Service (the NetworkPolicy denies everyone else)."""
    api_keys: tuple[str, ...]
    """Ids of the API keys the OpenAI routes accept; each key is generated and kept as a secret."""
    startup_timeout_seconds: int
    labels: dict[str, str]
    """The environment's tags as labels, on every object."""
    hf_token: pulumi.Output[str] | None
    router_namespace: str | None = None
    """Where the stack's router runs, when it routes to this target: it may call the Service, with a key of its
    own (`router`)."""
    dashboards_namespace: str | None = None
    """Where the Grafana dashboards' ConfigMap goes (the target's namespace or the monitoring one); None: none."""
    alerts: AlertThresholds | None = None
    """A PrometheusRule with these thresholds; None: none."""
    weights: WeightsAccess | None = None
    """Required when the model or an adapter comes from s3:// or gs:// (the config checks it)."""


ROUTER_KEY = litellm.ROUTER_KEY_ID
SERVING_ROLES = {**ROLES, "ConfigMap": "dashboards", "PrometheusRule": "alerts"}
"""Kind -> the role that names its resource here (the one ConfigMap of a target holds its dashboards)."""


def image_ref(args: ModelServingArgs, engine: str) -> str:
    """Our image for the engine in the target's registry: by digest when given, else by the content tag of
    containers/ (what `selfhost render` tells to build and push)."""
    repo = f"{args.registry}/{IMAGES[engine].name}"
    return f"{repo}@{args.image_digest}" if args.image_digest else f"{repo}:{content_tag()}"


def gguf_path(model: ModelSpec) -> str:
    """Where the init container (selfhost-fetch) puts the model's GGUF file from the Hub on the cache volume."""
    return hub_file_path(model.id, str(model.revision), str(model.file))


def hub_file_path(repo: str, revision: str, file: str) -> str:
    """Where selfhost-fetch puts a Hub file under GGUF_DIR (its --dir)."""
    return f"{GGUF_DIR}/{repo.replace('/', '--')}/{revision}/{file}"


def local_path(location: Location) -> str:
    """Where a bucket's or a volume's source is inside the pod: the objects the init container fetched onto the
    cache volume (a bucket's prefix pins them: nothing else names a version), or the claim mounted read-only."""
    base = f"{OBJECTS_DIR}/{location.scheme}/{location.bucket}" if location.scheme in BUCKETS else \
        f"{VOLUMES_DIR}/{location.bucket}"
    return f"{base}/{location.prefix}" if location.prefix else base


def _fetch_item(location: Location, file: str | None, sha256: str | None) -> str:
    """selfhost-fetch's item for a bucket source: the prefix (a checkpoint or PEFT folder), or one GGUF file of it
    with its hash."""
    if file is None:
        return location.uri
    return f"{location.uri}/{file}" + (f"#sha256={sha256}" if sha256 else "")


def model_path(model: ModelSpec) -> str:
    """What the engine loads: a Hub repository by id (vLLM downloads it), or a local path: the GGUF file the init
    container fetched, the fetched checkpoint folder, or the folder on the mounted claim."""
    location, gguf = model.location, ENGINES[model.engine].gguf
    if location.scheme == "hub":
        return gguf_path(model) if gguf else model.id
    return f"{local_path(location)}/{model.file}" if gguf else local_path(location)


def adapter_source(model: ModelSpec, adapter: AdapterSpec) -> str:
    """The adapter's source as our adapter's SELFHOST_ADAPTERS takes it: a Hub PEFT folder for vLLM, which our
    adapter downloads itself at start (`hf://repo@commit`); else the local path the init container fetched it to
    or the claim holds (vLLM: a PEFT folder; llama.cpp: the GGUF file)."""
    location, gguf = adapter.location, ENGINES[model.engine].gguf
    if location.scheme == "hub":
        return hub_file_path(str(adapter.id), str(adapter.revision), str(adapter.file)) if gguf else adapter.origin
    return f"{local_path(location)}/{adapter.file}" if gguf else local_path(location)


def adapter_fetch_items(model: ModelSpec) -> list[str]:
    """selfhost-fetch's items for the adapters the init container fetches: llama.cpp's GGUF adapters from the Hub
    (like the base file: repo, commit, file, hash) and every adapter from a bucket."""
    gguf, items = ENGINES[model.engine].gguf, []
    for a in model.adapters:
        location = a.location
        if location.scheme == "hub" and gguf:
            items.append(f"hf://{a.id}@{a.revision}/{a.file}" + (f"#sha256={a.sha256}" if a.sha256 else ""))
        elif location.scheme in BUCKETS:
            items.append(_fetch_item(location, a.file if gguf else None, a.sha256))
    return items


def claims(model: ModelSpec) -> list[str]:
    """The PersistentVolumeClaims the model's and its adapters' pvc:// sources name, each once."""
    found = [loc.bucket for loc in (model.location, *(a.location for a in model.adapters)) if loc.scheme == "pvc"]
    return list(dict.fromkeys(found))


def claim_volume(claim: str) -> str:
    """The pod's volume name for a claim: a DNS label (a claim name may hold dots and be 63 long), stable for it."""
    return f"weights-{hashlib.sha256(claim.encode()).hexdigest()[:12]}"


def reads_buckets(model: ModelSpec) -> bool:
    return any(loc.scheme in BUCKETS for loc in (model.location, *(a.location for a in model.adapters)))


def in_flight_limit(args: ModelServingArgs) -> int:
    """Requests one replica takes at once on a queue-scaled target: vLLM's batch (its default max_num_seqs for
    the GPU) plus a queue a few scaling thresholds deep, which KEDA sees; more are a 429."""
    assert args.gpu is not None
    batch = engine_limits(None, Hardware.of_gpu(GPUS[args.gpu], args.gpu_count)).max_seqs
    assert batch is not None  # vLLM on a GPU
    return batch + facts.QUEUE_ALLOWANCE_THRESHOLDS * args.scaling.target_waiting_requests


def serving_args(args: ModelServingArgs) -> list[str]:
    """The adapter's arguments (the image's entrypoint): OpenAI routes on PORT with API keys from the mounted
    Secret, the model under its Hugging Face id (and our name for it as an alias), the engine's flags (joined to
    their option with '=': a value starting with '--' is not taken for an option)."""
    model = args.model
    if ENGINES[model.engine].gguf:
        threads = max(1, math.floor(cpus_of(args.resources.cpu)))
        engine = ["--engine", "llamacpp", "--model", model_path(model),
                  f"--engine-args=--n_ctx {model.max_context} --n_threads {threads}"]
    else:
        # Weights of our own are a local folder, which has no revision; the adapter names the adapters to vLLM
        # itself (--enable-lora, --lora-modules): the infrastructure sets how many stay on the GPU and their rank.
        hub = model.location.scheme == "hub"
        flags = vllm_flags(model_path(model), model.revision if hub else None, model.max_context, args.gpu_count,
                           model.quantization, GPU_MEMORY_UTILIZATION, model.kv_cache_dtype,
                           lora_flags(model.lora_slots, model.max_adapter_rank) if model.adapters else None)
        engine = ["--engine", "vllm", "--model", model_path(model), f"--engine-args={engine_args(flags)}"]
        if args.scaling.metric == "queue-depth":
            limit = str(in_flight_limit(args))
            engine += ["--max-engine-connections", limit, "--max-concurrency-per-key", limit]
    return ["openai", *engine, "--model-name", model.id, "--model-aliases", model.name, "--host", "0.0.0.0",
            "--port", str(PORT), "--api-keys-file", f"{SECRETS_DIR}/api_keys", "--drain-seconds", str(DRAIN_S),
            "--engine-startup-timeout-seconds", str(args.startup_timeout_seconds)]


def _environment(model: ModelSpec, token: bool, more: dict[str, str] | None = None) -> list[dict[str, str]]:
    env = {"HOME": "/tmp"}
    if not ENGINES[model.engine].gguf:
        env |= {name: f"{CACHE_DIR if volume == 'cache' else '/tmp'}/{path}"
                for name, volume, path in facts.VLLM_CACHES}
    if token:
        # A path, read by the Hub client: the token itself stays in the mounted Secret.
        env["HF_TOKEN_PATH"] = f"{SECRETS_DIR}/hf_token"
    return [{"name": k, "value": v} for k, v in {**env, **(more or {})}.items()]


def _store_args(weights: WeightsAccess | None) -> list[str]:
    if weights is None:
        return []
    return [*(["--endpoint", weights.endpoint] if weights.endpoint else []),
            *(["--region", weights.region] if weights.region else [])]


def init_containers(args: ModelServingArgs, image: str, token: bool, security: dict[str, Any],
                    mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What runs before the engine, each a selfhost-fetch onto the cache volume: the model (llama.cpp's GGUF file
    from the Hub; any model from a bucket), then the adapters the engine loads from local paths (llama.cpp's from
    the Hub, anyone's from a bucket). Only these containers mount the weights Secret, as files."""
    model = args.model
    engine = "llamacpp" if ENGINES[model.engine].gguf else "vllm"
    location = model.location
    runs: list[tuple[str, list[str], bool]] = []  # (name, args, reads a bucket)
    if location.scheme == "hub" and engine == "llamacpp":
        fetch = ["--repo", model.id, "--revision", str(model.revision), "--file", str(model.file), "--dir", GGUF_DIR]
        runs.append(("fetch-model", fetch + (["--sha256", model.sha256] if model.sha256 else []), False))
    elif location.scheme in BUCKETS:
        item = _fetch_item(location, model.file if engine == "llamacpp" else None, model.sha256)
        runs.append(("fetch-model", ["--objects-dir", OBJECTS_DIR, *_store_args(args.weights), item], True))
    items = adapter_fetch_items(model)
    if items:
        runs.append(("fetch-adapters", ["--dir", GGUF_DIR, "--objects-dir", OBJECTS_DIR, *_store_args(args.weights),
                                        *items], any(not i.startswith("hf://") for i in items)))
    credentials = {"SELFHOST_FETCH_CREDENTIALS_DIR": WEIGHTS_SECRET_DIR}
    return [{
        "name": name, **pulled(image),
        "command": [f"{PROGRAMS[engine]}/selfhost-fetch"],
        "args": fetch_args,
        "env": _environment(model, token, credentials if bucket else None),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": security,
        "volumeMounts": [*mounts, *([{"name": "weights-secret", "mountPath": WEIGHTS_SECRET_DIR, "readOnly": True}]
                                    if bucket else [])],
    } for name, fetch_args, bucket in runs]


def pod_spec(args: ModelServingArgs, image: str, token: bool, selector: dict[str, str]) -> dict[str, Any]:
    """The serving pod: our image non-root with a read-only root and no capabilities, probes sized from the model,
    the model cache, the Secret's files and /dev/shm mounted (and the team's claims of pvc:// sources, read-only),
    spread over nodes; init containers fetch first what the engine loads from the cache (`init_containers`)."""
    model, name = args.model, args.name
    container_security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                          "capabilities": {"drop": ["ALL"]}}
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "cache", "mountPath": CACHE_DIR},
                                    {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True}]
    # pvc:// sources: the team's claims, read-only (the serving container reads them in place; nothing fetches).
    volumes = [{"name": claim_volume(c), "mountPath": f"{VOLUMES_DIR}/{c}", "readOnly": True} for c in claims(model)]
    adapters = {"SELFHOST_ADAPTERS": adapters_setting([(a.name, adapter_source(model, a)) for a in model.adapters])}
    limits: dict[str, Any] = {"cpu": args.resources.cpu, "memory": args.resources.memory}
    if args.gpu:
        limits[facts.GPU_RESOURCE] = str(args.gpu_count)
    probe = lambda path, **more: {"httpGet": {"path": path, "port": "http"}, "periodSeconds": PROBE_PERIOD_S,  # noqa: E731
                                  "timeoutSeconds": 5, **more}
    serving = {
        "name": "serving", **pulled(image),
        "args": serving_args(args),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": _environment(model, token, adapters if model.adapters else None),
        "resources": {"requests": {"cpu": args.resources.cpu, "memory": args.resources.memory}, "limits": limits},
        # Start-up gets the whole sized budget (download, load, warm-up); then readiness takes a replica out of
        # the Service while its engine is down or restarting, and liveness restarts only a hung adapter (the
        # adapter restarts a broken engine itself).
        "startupProbe": probe("/health", failureThreshold=math.ceil(args.startup_timeout_seconds / PROBE_PERIOD_S)),
        "readinessProbe": probe("/health", failureThreshold=3),
        "livenessProbe": probe("/livez", failureThreshold=3, periodSeconds=20),
        "securityContext": container_security,
        "volumeMounts": [*mounts, {"name": "shm", "mountPath": "/dev/shm"}, *volumes],
    }
    secret_items = [{"key": "api_keys", "path": "api_keys"}] + ([{"key": "hf_token", "path": "hf_token"}] if token
                                                                 else [])
    init = init_containers(args, image, token, container_security, mounts)
    return {
        "serviceAccountName": name, "automountServiceAccountToken": False, "enableServiceLinks": False,
        "terminationGracePeriodSeconds": GRACE_S,
        "securityContext": {"runAsNonRoot": True, "runAsUser": facts.APP_UID, "runAsGroup": facts.APP_UID,
                            "fsGroup": facts.APP_UID, "fsGroupChangePolicy": "OnRootMismatch",
                            "seccompProfile": {"type": "RuntimeDefault"}},
        **({"nodeSelector": dict(args.node_selector)} if args.node_selector else {}),
        **({"tolerations": [dict(tol) for tol in args.tolerations]} if args.tolerations else {}),
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": selector}}],
        **({"initContainers": init} if init else {}),
        "containers": [serving],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": args.shm_size}},
            {"name": "cache", "persistentVolumeClaim": {"claimName": f"{name}-model-cache"}},
            {"name": "secrets", "secret": {"secretName": f"{name}-secrets", "defaultMode": 0o440,
                                           "items": secret_items}},
            *([{"name": "weights-secret", "secret": {"secretName": args.weights.secret, "defaultMode": 0o440}}]
              if args.weights and reads_buckets(model) else []),
            *({"name": claim_volume(c), "persistentVolumeClaim": {"claimName": c, "readOnly": True}}
              for c in claims(model)),
        ],
    }


def manifests(args: ModelServingArgs, secret_data: dict[str, pulumi.Input[str]]) -> list[dict[str, Any]]:
    """Every object of the target, in apply order."""
    model, ns, cluster, cache = args.model, args.namespace, args.foundation.config, args.cache
    engine = "llamacpp" if ENGINES[model.engine].gguf else "vllm"
    name = args.name
    selector = {"app.kubernetes.io/name": "selfhost-serving", "app.kubernetes.io/instance": name}
    labels = {**args.labels, **MANAGED, **selector, "app.kubernetes.io/component": "serving"}
    meta = lambda object_name, **extra: {"name": object_name, "namespace": ns, "labels": labels, **extra}  # noqa: E731
    level = facts.POD_SECURITY[engine]
    pod = pod_spec(args, image_ref(args, engine), "hf_token" in secret_data, selector)
    lora = model.lora
    annotations = {"selfhost.dev/model": model.id, **({"selfhost.dev/base": model.base} if model.base else {}),
                   **({"selfhost.dev/lora": f"{lora.slots}x{lora.rank}"} if lora else {}),
                   **({"selfhost.dev/adapters": ",".join(a.name for a in model.adapters)} if model.adapters else {}),
                   "selfhost.dev/engine": model.engine,
                   "selfhost.dev/quantization": model.quantization,
                   **({"selfhost.dev/kv-cache": model.kv_cache_dtype} if model.kv_cache_dtype != "auto" else {}),
                   **({"selfhost.dev/gpu": args.gpu} if args.gpu else {}),
                   **({"selfhost.dev/cpu": args.cpu_type} if args.cpu_type else {}),
                   "pulumi.com/timeoutSeconds": str(args.startup_timeout_seconds + ROLLOUT_MARGIN_S)}
    out: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            **args.labels, **MANAGED, "pod-security.kubernetes.io/enforce": level,
            "pod-security.kubernetes.io/enforce-version": f"v{cluster.version}",
            "pod-security.kubernetes.io/warn": level, "pod-security.kubernetes.io/audit": level}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name), "automountServiceAccountToken": False},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta(f"{name}-secrets"), "type": "Opaque",
         "stringData": secret_data},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(f"{name}-model-cache"),
         "spec": {"accessModes": [cache.access_mode], "resources": {"requests": {"storage": cache.size}},
                  **({"storageClassName": cache.storage_class} if cache.storage_class else {})}},
        *network_policies(args, selector, meta),
        {"apiVersion": "v1", "kind": "Service", "metadata": meta(name),
         "spec": {"type": "ClusterIP", "selector": selector,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, annotations=annotations),
         # No `replicas`: the autoscaler owns it (a re-apply would otherwise reset it).
         "spec": {"selector": {"matchLabels": selector}, "revisionHistoryLimit": 5,
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                  "template": {"metadata": {"labels": labels,
                                            "annotations": {"kubectl.kubernetes.io/default-container": "serving"}},
                               "spec": pod}}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(name),
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector},
                  "unhealthyPodEvictionPolicy": "AlwaysAllow"}},
        autoscaler(args, meta),
    ]
    if args.ingress:
        out.append(ingress(args, args.ingress, meta))
    # The cluster's Prometheus finds our ServiceMonitor and PrometheusRule by its selector's labels.
    selected = {**meta(name), "labels": {**meta(name)["labels"], **args.foundation.config.monitoring_labels}}
    if args.service_monitor:
        out.append({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": selected,
                    "spec": {"selector": {"matchLabels": selector}, "namespaceSelector": {"matchNames": [ns]},
                             "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}]}})
    observed = Observed(name, ns, engine, ENGINES[model.engine].max_streams or 1)
    if args.dashboards_namespace:
        out.append(dashboard_config_map(observed, args.dashboards_namespace, labels))
    if args.alerts:
        out.append(prometheus_rule(observed, args.alerts, selected))
    return out


def network_policies(args: ModelServingArgs, selector: dict[str, str], meta: Any) -> list[dict[str, Any]]:
    """Deny everything in the namespace, then allow what serving needs: callers in (the ingress controller,
    Prometheus, the configured namespaces, the router) on the serving port; DNS; HTTPS to public addresses for the
    Hub and its CDN."""
    cluster = args.foundation.config
    callers = [*args.allow_from_namespaces, *([cluster.ingress_namespace] if args.ingress else []),
               *([cluster.monitoring_namespace] if args.service_monitor else []),
               *([args.router_namespace] if args.router_namespace else [])]
    egress = []
    weights = args.weights
    if weights and weights.egress_cidr and reads_buckets(args.model):
        # A private object store (MinIO on the site's network) is outside "public addresses": open exactly it.
        endpoint = urlsplit(weights.endpoint or "https://")
        port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
        egress.append({"to": [{"ipBlock": {"cidr": weights.egress_cidr}}],
                       "ports": [{"protocol": "TCP", "port": port}]})
    return locked_down(meta, "allow-serving", selector, callers, PORT, egress)


def autoscaler(args: ModelServingArgs, meta: Any) -> dict[str, Any]:
    """GPU targets scale on queue depth: KEDA on the engine's waiting requests (vllm:num_requests_waiting, which the
    adapter's /metrics passes on), as vLLM's production stack does. CPU targets: an HPA on CPU use."""
    s = args.scaling
    target_ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": args.name}
    # Scale down slowly: a replica takes minutes to come back.
    down = {"scaleDown": {"stabilizationWindowSeconds": 300}}
    if s.metric == "cpu":
        return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta(args.name),
                "spec": {"scaleTargetRef": target_ref, "minReplicas": s.min_replicas, "maxReplicas": s.max_replicas,
                         "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                             "type": "Utilization", "averageUtilization": s.target_cpu_percent}}}],
                         "behavior": down}}
    query = f'sum(vllm:num_requests_waiting{{namespace="{args.namespace}",service="{args.name}"}})'
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": meta(args.name),
            "spec": {"scaleTargetRef": target_ref, "minReplicaCount": s.min_replicas, "maxReplicaCount": s.max_replicas,
                     "pollingInterval": 15, "cooldownPeriod": 300,
                     "advanced": {"horizontalPodAutoscalerConfig": {"behavior": down}},
                     "triggers": [{"type": "prometheus", "metadata": {
                         "serverAddress": str(args.foundation.config.prometheus_url), "query": query,
                         "threshold": str(s.target_waiting_requests)}}]}}


def ingress(args: ModelServingArgs, spec: IngressRoute, meta: Any) -> dict[str, Any]:
    notes = {}
    if spec.cluster_issuer:
        notes["cert-manager.io/cluster-issuer"] = spec.cluster_issuer
    if spec.class_name == "nginx":
        # Streams: no buffering, and an hour for a whole answer; bodies as large as the adapter takes.
        notes |= {"nginx.ingress.kubernetes.io/proxy-buffering": "off",
                  "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
                  "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
                  "nginx.ingress.kubernetes.io/proxy-body-size": "1m"}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": meta(args.name, annotations=notes),
            "spec": {"ingressClassName": spec.class_name,
                     "tls": [{"hosts": [spec.host], "secretName": spec.tls_secret or f"{args.name}-tls"}],
                     "rules": [{"host": spec.host, "http": {"paths": [{
                         "path": "/", "pathType": "Prefix",
                         "backend": {"service": {"name": args.name, "port": {"name": "http"}}}}]}}]}}


class ModelServing(pulumi.ComponentResource):
    """One model on the cluster: a Pod Security `restricted` namespace, a service account without a token, a
    Secret with the Hugging Face token and generated API keys (mounted as files), a model-cache volume, a
    Deployment of our image (non-root, read-only root, no capabilities, seccomp RuntimeDefault, probes sized from
    the model, rolling updates that never drop below the serving replicas), a Service, a PodDisruptionBudget, a
    default-deny NetworkPolicy with the allow rules serving needs, an autoscaler, and by config an Ingress with
    TLS, a ServiceMonitor, Grafana dashboards (a ConfigMap) and alerts (a PrometheusRule). Weights of the team's
    own (a bucket, fetched by init containers with the key of an existing Secret mounted as files; a claim,
    mounted read-only) and LoRA adapters (SELFHOST_ADAPTERS) need no object of their own: the pod carries them."""

    def __init__(self, name: str, args: ModelServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:k8s:ModelServing", name, None, opts)
        ids = [*args.api_keys, *([ROUTER_KEY] if args.router_namespace and ROUTER_KEY not in args.api_keys else [])]
        keys = {key: random.RandomPassword(f"{name}-key-{key}", length=48, special=False,
                                           opts=pulumi.ResourceOptions(parent=self)).result for key in ids}
        lines: pulumi.Output[str] = pulumi.Output.all(*keys.values()).apply(
            lambda values: "".join(f"{key}:{value}\n" for key, value in zip(keys, values, strict=True)))
        keys_file: pulumi.Output[str] = pulumi.Output.secret(lines)
        secret_data: dict[str, pulumi.Input[str]] = {"api_keys": keys_file}
        if args.hf_token is not None:
            secret_data["hf_token"] = pulumi.Output.secret(args.hf_token)
        depends = [args.foundation.gpu_operator] if args.foundation.gpu_operator and args.gpu else []
        child = pulumi.ResourceOptions(parent=self, provider=args.foundation.provider)
        declared: dict[str, pulumi.CustomResource] = {}
        for manifest in manifests(args, secret_data):
            kind = manifest["kind"]
            role = SERVING_ROLES.get(kind) or manifest["metadata"]["name"]
            # Everything waits for the namespace; the Deployment for all it refers to (its pods would fail to
            # start without the account, the Secret or the volume) and for the GPU Operator.
            after = [declared["namespace"]] if "namespace" in declared else []
            if kind == "Deployment":
                after = [*declared.values(), *depends]
            options = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=after))
            declared[role] = declare_object(f"{name}-{role}", manifest, options)
        self.namespace = args.namespace
        self.service_name = args.name
        self.in_cluster_url = f"http://{args.name}.{args.namespace}.svc.cluster.local"
        self.base_url = f"https://{args.ingress.host}/v1" if args.ingress else f"{self.in_cluster_url}/v1"
        self.image = image_ref(args, "llamacpp" if ENGINES[args.model.engine].gguf else "vllm")
        self.api_keys = pulumi.Output.secret(keys)
        self.router_key: pulumi.Output[str] | None = (pulumi.Output.secret(keys[ROUTER_KEY])
                                                      if args.router_namespace else None)
        self.register_outputs({"namespace": self.namespace, "baseUrl": self.base_url, "image": self.image})
