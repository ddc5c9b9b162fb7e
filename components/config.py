"""The typed stack configuration: one environment, parsed once, validated whole before any resource exists.

`load_environment` takes the stack's raw config (what `pulumi config` holds for the project namespace plus the
provider keys we read) and returns a frozen `Environment`, or raises `ConfigError` listing every problem with its
key path, the bad value and what is allowed. Components receive parts of the `Environment`, never the raw config.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from typing import Annotated, Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from .catalog import gcp_machines
from .catalog.engines import ENGINES, FP8_ARCHS
from .catalog.gpus import GPUS
from .catalog.images import image_regions
from .catalog.models import MODELS, ModelFacts
from .catalog.sagemaker_instances import instances_in, known_regions
from .sizing import Fit, memory_fit

PROJECT = "selfhost-llm"
SECRET_PLACEHOLDER = "[secret]"

# Keys read from other namespaces; everything else must live in the project's namespace.
PROVIDER_KEYS = {"aws:region": "awsRegion", "gcp:project": "gcpProject", "gcp:region": "gcpRegion"}
# The discriminated union of targets puts the branch's tag in error locations; users never wrote it.
TARGET_KINDS = ("sagemaker", "vertex")

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$")]
HfRepoId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")]
CommitSha = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy API reference).
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]


class ConfigError(pulumi.RunError):
    """Every problem in a stack's config at once. A RunError, so `pulumi up` prints it without a traceback."""

    def __init__(self, stack: str, problems: list[Problem]):
        self.stack = stack
        self.problems = problems
        lines = [f"Invalid configuration for stack '{stack}' ({len(problems)} problem{'s' * (len(problems) != 1)}):"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class Problem:
    def __init__(self, path: str, value: Any, message: str, allowed: str | None = None):
        self.path, self.value, self.message, self.allowed = path, value, message, allowed

    def __str__(self) -> str:
        shown = "(missing)" if self.value is _MISSING else _short(self.value)
        text = f"{self.path}: {shown}: {self.message}"
        return f"{text}; allowed: {self.allowed}" if self.allowed else text

    def __repr__(self) -> str:
        return f"Problem({self.path!r}, {self.message!r})"


_MISSING = object()


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Strict(BaseModel):
    """camelCase keys as users write them in stack files; unknown keys are errors; parsed values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=False)


class Network(Strict):
    cidr: str = "10.20.0.0/16"
    """The VPC's IPv4 range; private subnets are carved from it, one per availability zone."""
    az_count: int = Field(2, ge=2, le=6)
    """How many availability zones to span (taken in order from the region's list) when `availabilityZones` is
    not set. Two at least: SageMaker spreads instances across the subnets it is given."""
    availability_zones: list[str] | None = None
    """Pin the zones by name instead, e.g. [us-east-1a, us-east-1b]."""
    nat: Literal["none", "single", "per-az"] = "none"
    """Internet egress. `none`: private only, AWS services through VPC endpoints (models must come from S3).
    `single`: one NAT gateway (cheaper, one AZ's failure cuts egress). `per-az`: one NAT gateway per zone."""
    flow_log_retention_days: LogRetentionDays = 30

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        net = ipaddress.ip_network(v, strict=True)
        if net.version != 4 or not 16 <= net.prefixlen <= 24:
            raise ValueError("must be an IPv4 network between /16 and /24")
        if not net.is_private:
            raise ValueError("must be a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
        return v


class FactsOverride(Strict):
    """Model facts for a model the catalog does not know (see components/catalog/models.py)."""

    params_billion: float = Field(gt=0)
    layers: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    max_context: int = Field(gt=0)
    gated: bool = False
    license: str = "unknown"


class ModelSpec(Strict):
    name: Slug
    """Our key for the model: used in resource names, so renaming it replaces resources."""
    id: HfRepoId
    """Hugging Face repository id, e.g. mistralai/Mistral-7B-Instruct-v0.3."""
    revision: CommitSha
    """The commit to serve, pinned so every deployment serves the same weights."""
    engine: Literal["vllm", "tgi", "lmi"] = "vllm"
    quantization: Literal["none", "fp8", "int8", "awq", "gptq", "nf4"] = "none"
    max_context: int = Field(4096, gt=0, le=1_048_576)
    """Longest prompt + completion, in tokens, the engine admits."""
    source: Literal["hub", "s3"] = "hub"
    """Where serving hosts fetch weights: `hub` downloads from Hugging Face at start (needs internet egress);
    `s3` reads the artifacts bucket under models/<id>/<revision>/ (works with network isolation, no token)."""
    facts: FactsOverride | None = None

    def resolved_facts(self) -> ModelFacts | None:
        if self.facts is not None:
            return ModelFacts(**self.facts.model_dump())
        return MODELS.get(self.id)


class Scaling(Strict):
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1, le=100)
    target_invocations_per_instance: int = Field(20, ge=1)
    """Target-tracking goal: invocations per instance per minute (SageMakerVariantInvocationsPerInstance)."""
    scale_in_cooldown_seconds: int = Field(600, ge=0)
    scale_out_cooldown_seconds: int = Field(120, ge=0)


class DataCapture(Strict):
    enabled: bool = True
    sampling_percent: int = Field(10, ge=1, le=100)
    """Share of requests whose input and output are stored in the artifacts bucket under data-capture/."""


class Deployment(Strict):
    """Blue/green update policy: new instances come up beside the old before traffic moves."""

    traffic_routing: Literal["all-at-once", "canary", "linear"] = "all-at-once"
    step_percent: int = Field(25, ge=1, le=50)
    """Canary size, or linear step, as a percentage of capacity."""
    wait_seconds: int = Field(300, ge=0, le=3600)
    """Bake time after each traffic shift, watching the rollback alarms."""
    termination_wait_seconds: int = Field(300, ge=0, le=3600)


class Alarms(Strict):
    p99_latency_ms: int = Field(20_000, gt=0)
    """Model latency p99 threshold: LLM responses take seconds, so this is whole-response time."""
    error_rate_5xx_per_minute: int = Field(5, ge=1)
    gpu_memory_percent: int = Field(95, ge=1, le=100)


class SageMakerTarget(Strict):
    kind: Literal["sagemaker"]
    name: Slug
    model: str
    """The `name` of an entry in `models`."""
    instance_type: str
    concurrency: int = Field(1, ge=1, le=1024)
    """Sequences at full context that must fit in GPU memory at once (KV cache sizing)."""
    scaling: Scaling = Scaling()
    data_capture: DataCapture = DataCapture()
    deployment: Deployment = Deployment()
    alarms: Alarms = Alarms()
    network_isolation: bool | None = None
    """Default: on when the model comes from S3 (the container then needs no network), off for `hub`."""
    image: Literal["managed", "selfhost"] = "managed"
    """`managed`: the AWS Deep Learning Container for the engine. `selfhost`: our image (containers/vllm: the
    engine behind our adapter, with its usage log and metrics), built and pushed to ECR by `pulumi up`."""
    startup_timeout_seconds: int | None = Field(None, ge=60, le=3600)
    """Override the sized ContainerStartupHealthCheckTimeoutInSeconds."""

    def isolation(self, model: ModelSpec) -> bool:
        return self.network_isolation if self.network_isolation is not None else model.source == "s3"


class VertexScaling(Strict):
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1, le=1000)
    target_duty_cycle_percent: int = Field(60, ge=1, le=100)
    """Autoscaling goal: GPU duty cycle (aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle)."""


class RequestLogging(Strict):
    enabled: bool = False
    """Store sampled requests and responses in a BigQuery table of the environment (they hold user prompts)."""
    sampling_rate: float = Field(0.1, gt=0, le=1)


class VertexAlarms(Strict):
    p99_latency_ms: int = Field(20_000, gt=0)
    errors_per_minute: int = Field(5, ge=1)


class VertexTarget(Strict):
    kind: Literal["vertex"]
    name: Slug
    model: str
    """The `name` of an entry in `models`."""
    machine_type: str
    """e.g. g2-standard-12 (L4), a2-highgpu-1g (A100 40GB), a3-highgpu-1g (H100), n1-standard-8 (T4, V100)."""
    accelerator_type: str
    """Vertex's accelerator enum, e.g. NVIDIA_L4; must be the one the machine family takes."""
    accelerator_count: int = Field(1, ge=1, le=16)
    concurrency: int = Field(1, ge=1, le=1024)
    scaling: VertexScaling = VertexScaling()
    endpoint: Literal["dedicated", "private"] = "dedicated"
    """`dedicated`: a dedicated public DNS name (IAM-authenticated). `private`: Private Service Connect into the
    environment's VPC, no public path."""
    request_logging: RequestLogging = RequestLogging()
    alarms: VertexAlarms = VertexAlarms()
    spot: bool = False
    startup_timeout_seconds: int | None = Field(None, ge=60, le=7200)
    image: Literal["managed", "selfhost"] = "managed"
    """`managed`: Google's Model Garden vLLM image. `selfhost`: our image (containers/vllm), built and pushed to
    Artifact Registry by `pulumi up`."""


Target = Annotated[SageMakerTarget | VertexTarget, Field(discriminator="kind")]


class Budget(Strict):
    monthly_usd: float | None = Field(None, gt=0)
    """Monthly ceiling for the expected cost; a plan above it fails `selfhost preview` and the policy pack."""


class Usage(Strict):
    """The load the cost estimate assumes: it sets expected replicas, $ per 1M tokens and the API comparison."""

    hours_per_day: float = Field(24, gt=0, le=24)
    """Hours a day the traffic lasts; the rest of the day endpoints sit at their minimum replicas."""
    requests_per_day: int = Field(10_000, ge=0)
    input_tokens_per_request: int = Field(500, ge=1)
    output_tokens_per_request: int = Field(200, ge=1)
    compare_with: list[str] = ["gpt-4o-mini", "claude-3-haiku", "open-mistral-7b", "together-llama-3.1-8b"]
    """Pay-per-token APIs to compare with (keys of components/catalog/api_prices.py)."""

    @field_validator("compare_with")
    @classmethod
    def _known_apis(cls, v: list[str]) -> list[str]:
        from .catalog.api_prices import API_PRICES

        unknown = [k for k in v if k not in API_PRICES]
        if unknown:
            raise ValueError(f"unknown API {unknown[0]!r}; known: {', '.join(API_PRICES)}")
        return v


class Environment(Strict):
    project: str = PROJECT
    stack: str
    environment: str = Field("", pattern=r"^$|^[a-z][a-z0-9-]{0,30}$")
    """Tag value and name prefix; empty means the stack name."""
    owner: str = Field("ml-platform", min_length=1, max_length=256)
    aws_region: str | None = Field(None, alias="aws:region")
    gcp_project: str | None = Field(None, alias="gcp:project", pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    gcp_region: str | None = Field(None, alias="gcp:region")
    network: Network = Network()
    models: list[ModelSpec] = Field(min_length=1)
    targets: list[Target] = Field(min_length=1)
    budget: Budget = Budget()
    usage: Usage = Usage()
    tags: dict[str, str] = {}
    hf_token: bool = False
    """Whether a Hugging Face token is configured. The value itself never enters this model."""

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if key.lower().startswith("aws:") or not 1 <= len(key) <= 128 or len(value) > 256:
                raise ValueError(f"tag {key!r}: keys are 1-128 characters, not starting with 'aws:'; values at most 256")
        return v

    @property
    def name(self) -> str:
        return self.environment or self.stack

    @property
    def all_tags(self) -> dict[str, str]:
        """Tags on every taggable resource: ours first, so a stack cannot drop them by accident."""
        return {**self.tags, "environment": self.name, "owner": self.owner, "managed-by": "pulumi", "project": self.project}

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_environment(stack: str, raw: dict[str, Any], secret_keys: set[str] | frozenset[str] = frozenset()) -> Environment:
    """Validate `raw` (full config keys, e.g. 'selfhost-llm:models', values as Pulumi passes them: strings,
    objects as JSON text) into an Environment. Raises ConfigError with every problem."""
    problems: list[Problem] = []
    data: dict[str, Any] = {"stack": stack}
    hf_key = f"{PROJECT}:hfToken"
    for key, value in raw.items():
        namespace, _, short = key.partition(":")
        if key == hf_key:
            if key not in secret_keys:
                problems.append(Problem(key, "(plain text, not shown)", "must be a secret",
                                        f"set it with `pulumi config set --secret hfToken`"))
            data["hfToken"] = bool(value)
        elif key in PROVIDER_KEYS:
            data[key] = value
        elif namespace == PROJECT:
            data[short] = _decode(value)
        # Keys of other namespaces (aws:profile, gcp:project, ...) belong to their providers.
    if "hfToken" not in data:
        data["hfToken"] = False

    env, structural = _validate(data)
    problems += structural
    if env is not None:
        problems += _semantic_problems(env)
    if problems:
        raise ConfigError(stack, problems)
    return env


def _validate(data: dict[str, Any]) -> tuple[Environment | None, list[Problem]]:
    """Validate the structure. An unknown key is reported and then set aside, so the checks across keys still
    run on the rest (dropping it changes no other value); any other structural problem stops there, since
    cross-key checks on a guessed value would mislead."""
    data = copy.deepcopy(data)
    problems: list[Problem] = []
    while True:
        try:
            return Environment.model_validate(data), problems
        except ValidationError as exc:
            errors = exc.errors()
            problems += [_from_pydantic(e) for e in errors]
            if any(e["type"] != "extra_forbidden" for e in errors):
                return None, problems
            for e in errors:
                _drop(data, e["loc"])


def _drop(data: Any, loc: tuple) -> None:
    *parents, leaf = (p for p in loc if p not in TARGET_KINDS)
    for part in parents:
        data = data[part]
    del data[leaf]


def _decode(value: Any) -> Any:
    """Pulumi hands structured config to programs as JSON text."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in TARGET_KINDS:  # the discriminated union's branch name, not a key the user wrote
            continue
        elif not out:
            out = part if ":" in part else f"{PROJECT}:{part}"
        else:
            out += f".{part}"
    return out


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model class whose field set applies at `loc` (for listing allowed keys)."""
    cls: Any = Environment
    for part in loc:
        if isinstance(part, int) or part in TARGET_KINDS:
            continue
        fields = {f.alias or n: f for n, f in cls.model_fields.items()}
        if part not in fields:
            return None
        ann = fields[part].annotation
        for candidate in (ann, *getattr(ann, "__args__", ())):
            for inner in (candidate, *getattr(candidate, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    cls = inner
                    break
            else:
                continue
            break
        else:
            return None
    return cls


def _from_pydantic(err: dict) -> Problem:
    loc = tuple(err["loc"])
    path = _path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = ", ".join(f.alias for f in parent.model_fields.values() if f.alias not in ("project", "stack")) if parent else None
        return Problem(path, err["input"], "unknown key", allowed)
    if kind == "missing":
        return Problem(path, _MISSING, "required key is missing")
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return Problem(path + ".kind", err["input"].get("kind", _MISSING) if isinstance(err["input"], dict) else err["input"],
                       "unknown target kind", ", ".join(TARGET_KINDS))
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return Problem(path, err["input"], "not an allowed value", expected)
    if kind == "string_pattern_mismatch":
        return Problem(path, err["input"], "has the wrong form", _PATTERN_HELP.get(loc[-1], err["ctx"]["pattern"]))
    message = err["msg"].removeprefix("Value error, ")
    return Problem(path, err["input"], message[:1].lower() + message[1:])


_PATTERN_HELP = {
    "name": "lowercase letters, digits and '-', 2-24 characters, starting with a letter",
    "revision": "a 40-character lowercase hex commit SHA from the model's Hugging Face repository",
    "id": "a Hugging Face repository id, 'owner/name'",
    "environment": "lowercase letters, digits and '-', starting with a letter, or empty for the stack name",
    "gcp:project": "a Google Cloud project id: 6-30 lowercase letters, digits and '-', starting with a letter",
}


def _semantic_problems(env: Environment) -> list[Problem]:
    """Checks across keys and against the catalogs; runs only on a structurally valid config."""
    problems: list[Problem] = []
    p = lambda path, *rest: problems.append(Problem(f"{PROJECT}:{path}", *rest))  # noqa: E731

    model_names = [m.name for m in env.models]
    for i, m in enumerate(env.models):
        if model_names.count(m.name) > 1 and model_names.index(m.name) != i:
            p(f"models[{i}].name", m.name, "duplicate model name")
        facts = m.resolved_facts()
        if facts is None:
            p(f"models[{i}].id", m.id, "no facts for this model in the catalog; add models[{i}].facts "
              "{paramsBillion, layers, kvHeads, headDim, maxContext}", ", ".join(sorted(MODELS)))
            continue
        if m.max_context > facts.max_context:
            p(f"models[{i}].maxContext", m.max_context, f"longer than {m.id} supports", f"1..{facts.max_context}")
        engine = ENGINES[m.engine]
        if m.quantization not in engine.quantization:
            p(f"models[{i}].quantization", m.quantization, f"not supported by engine '{m.engine}'",
              ", ".join(engine.quantization))
        if facts.gated and not env.hf_token:
            problems.append(Problem(f"{PROJECT}:hfToken", _MISSING,
                                    f"required secret: models[{i}].id {m.id!r} is a gated repository",
                                    "set it with `pulumi config set --secret hfToken <token>`"))
        if m.source == "hub" and env.network.nat == "none" and any(
            t.model == m.name for t in env.targets if t.kind == "sagemaker"
        ):
            p("network.nat", "none", f"models[{i}] ({m.name}) downloads from the Hugging Face Hub at start, "
              "which needs internet egress", f"single, per-az; or set models[{i}].source: s3")

    target_names = [t.name for t in env.targets]
    for i, t in enumerate(env.targets):
        if target_names.count(t.name) > 1 and target_names.index(t.name) != i:
            p(f"targets[{i}].name", t.name, "duplicate target name")
        if t.scaling.min_replicas > t.scaling.max_replicas:
            p(f"targets[{i}].scaling.minReplicas", t.scaling.min_replicas,
              f"greater than maxReplicas ({t.scaling.max_replicas})", f"0..{t.scaling.max_replicas}")
        if t.model not in model_names:
            p(f"targets[{i}].model", t.model, "no model with this name", ", ".join(model_names))
            continue
        if t.kind == "sagemaker":
            problems += _sagemaker_problems(env, i, t)
        else:
            problems += _vertex_problems(env, i, t)
    if any(t.kind == "vertex" for t in env.targets) and env.network.nat == "per-az":
        problems.append(Problem(f"{PROJECT}:network.nat", "per-az", "Cloud NAT is regional: one serves every zone",
                                "none, single"))
    return problems


def _sagemaker_problems(env: Environment, i: int, t: SageMakerTarget) -> list[Problem]:
    problems: list[Problem] = []
    p = lambda path, *rest: problems.append(Problem(f"{PROJECT}:targets[{i}].{path}", *rest))  # noqa: E731
    if env.aws_region is None:
        return [Problem("aws:region", _MISSING, "required for SageMaker targets", "an AWS region, e.g. us-east-1")]
    offered = instances_in(env.aws_region)
    if not offered:
        return [Problem("aws:region", env.aws_region, "SageMaker GPU hosting is not known in this region",
                        ", ".join(known_regions()))]
    if t.scaling.min_replicas == 0:
        p("scaling.minReplicas", 0, "variant-based SageMaker endpoints cannot scale to zero "
          "(only inference-component endpoints can, which the AWS provider does not offer)", "1 or more")
    model = env.model(t.model)
    if env.aws_region not in image_regions(model.engine):
        problems.append(Problem("aws:region", env.aws_region, f"no SageMaker image for engine '{model.engine}' "
                                f"(used by targets[{i}]) in this region", ", ".join(image_regions(model.engine))))
    if model.source == "hub" and t.isolation(model):
        p("networkIsolation", True, f"model '{model.name}' downloads from the Hugging Face Hub, which network "
          "isolation blocks", f"false, or set the model's source: s3")
    instance = offered.get(t.instance_type)
    if instance is None:
        p("instanceType", t.instance_type, f"not a SageMaker GPU instance type in {env.aws_region}", ", ".join(offered))
        return problems
    facts = model.resolved_facts()
    if facts is None:
        return problems
    if model.quantization == "fp8" and instance.gpu.arch not in FP8_ARCHS:
        p("instanceType", t.instance_type, _no_fp8(instance.gpu.name, model),
          ", ".join(k for k, v in offered.items() if v.gpu.arch in FP8_ARCHS))
    fit = memory_fit(facts, model.quantization, model.max_context, t.concurrency, instance.gpu_count,
                     instance.total_gpu_memory_gib)
    if not fit.fits:
        p("instanceType", t.instance_type, _does_not_fit(model, t.concurrency, fit, t.instance_type),
          _suggestions(facts, model, t.concurrency, "aws", env.aws_region, env.usage))
    return problems


def _vertex_problems(env: Environment, i: int, t: VertexTarget) -> list[Problem]:
    problems: list[Problem] = []
    p = lambda path, *rest: problems.append(Problem(f"{PROJECT}:targets[{i}].{path}", *rest))  # noqa: E731
    for key, value in (("gcp:project", env.gcp_project), ("gcp:region", env.gcp_region)):
        if value is None:
            problems.append(Problem(key, _MISSING, "required for Vertex AI targets",
                                    "a project id" if key == "gcp:project" else ", ".join(gcp_machines.VERTEX_REGION_ACCELERATORS)))
    if t.scaling.min_replicas == 0:
        p("scaling.minReplicas", 0, "Vertex AI dedicated resources keep at least one replica", "1 or more")
    model = env.model(t.model)
    if model.engine != "vllm":
        problems.append(Problem(f"{PROJECT}:models[{env.models.index(model)}].engine", model.engine,
                                f"Vertex AI targets (targets[{i}]) serve with the Vertex vLLM image", "vllm"))
    allowed = gcp_machines.allowed_accelerators(t.machine_type)
    if not allowed:
        p("machineType", t.machine_type, "not a GPU machine type Vertex AI serves on",
          ", ".join(gcp_machines.gpu_machine_types()))
        return problems
    if t.accelerator_type not in allowed:
        p("acceleratorType", t.accelerator_type, f"{t.machine_type} does not take this accelerator",
          ", ".join(allowed) + (f" (or for {t.accelerator_type}: {', '.join(gcp_machines.machines_for(t.accelerator_type))})"
                                if t.accelerator_type in gcp_machines.ACCELERATORS else ""))
        return problems
    if t.accelerator_count not in allowed[t.accelerator_type]:
        p("acceleratorCount", t.accelerator_count, f"{t.machine_type} takes {t.accelerator_type} only in these counts",
          ", ".join(map(str, allowed[t.accelerator_type])))
        return problems
    if env.gcp_region is not None:
        offered = gcp_machines.VERTEX_REGION_ACCELERATORS.get(env.gcp_region)
        if offered is None:
            problems.append(Problem("gcp:region", env.gcp_region, "no Vertex AI GPU prediction known in this region",
                                    ", ".join(gcp_machines.VERTEX_REGION_ACCELERATORS)))
        elif t.accelerator_type not in offered:
            regions = [r for r, accs in gcp_machines.VERTEX_REGION_ACCELERATORS.items() if t.accelerator_type in accs]
            p("acceleratorType", t.accelerator_type, f"Vertex AI offers no {t.accelerator_type} in {env.gcp_region}",
              f"{', '.join(sorted(offered))}; or regions {', '.join(regions)}")
    facts = model.resolved_facts()
    if facts is None:
        return problems
    gpu_host = gcp_machines.host(t.machine_type, t.accelerator_type, t.accelerator_count)
    if model.quantization == "fp8" and gpu_host.gpu.arch not in FP8_ARCHS:
        p("acceleratorType", t.accelerator_type, _no_fp8(gpu_host.gpu.name, model),
          ", ".join(a for a, g in gcp_machines.ACCELERATORS.items() if GPUS[g].arch in FP8_ARCHS))
    fit = memory_fit(facts, model.quantization, model.max_context, t.concurrency, t.accelerator_count,
                     gpu_host.total_gpu_memory_gib)
    if not fit.fits:
        p("machineType", t.machine_type,
          _does_not_fit(model, t.concurrency, fit, f"{t.accelerator_count} x {t.accelerator_type}"),
          _suggestions(facts, model, t.concurrency, "gcp", env.gcp_region, env.usage))
    return problems


def _no_fp8(gpu: str, model: ModelSpec) -> str:
    return f"{gpu} GPUs have no fp8 support (model '{model.name}' uses quantization fp8)"


def _does_not_fit(model: ModelSpec, concurrency: int, fit: Fit, host: str) -> str:
    return (f"model '{model.name}' needs {fit.required_gib:.1f} GiB (weights {fit.weights_gib:.1f} + KV cache "
            f"{fit.kv_cache_gib:.1f} for {model.max_context} tokens x {concurrency} + overhead "
            f"{fit.overhead_gib:.1f}) but {host} offers {fit.available_gib:.1f} GiB usable")


def _suggestions(facts: ModelFacts, model: ModelSpec, concurrency: int, cloud: str, region: str | None,
                 usage: Usage, limit: int = 6) -> str:
    """The hosts that fit, cheapest $ per 1M tokens first (`selfhost size` ranks the same way)."""
    from .catalog.pricing import lookup
    from .sizing_options import hosts, options

    rows = options(facts, model.quantization, model.max_context, concurrency,
                   hosts((cloud,), {cloud: region or ""}, lookup), usage.input_tokens_per_request,
                   usage.output_tokens_per_request)
    if not rows:
        return "none here: lower maxContext or concurrency, or quantize"
    shown = [f"{o.host.name} (${o.usd_per_1m_tokens:.2f}/1M tokens, " if o.usd_per_1m_tokens is not None
             else f"{o.host.name} (price unknown, " for o in rows[:limit]]
    return ", ".join(f"{text}{o.fit.margin_gib:.1f} GiB spare)" for text, o in zip(shown, rows)) + (
        f"; {len(rows) - limit} more: `selfhost size {model.id} --context {model.max_context} "
        f"--concurrency {concurrency}`" if len(rows) > limit else "")


def from_pulumi_config() -> Environment:
    """Read the running stack's config, as the Pulumi engine passes it, into an Environment."""
    from pulumi.runtime import config as rc

    raw = {**rc.get_config_env(), **rc.CONFIG.get()}
    secret_keys = set(rc.get_config_secret_keys_env()) | set(rc._SECRET_KEYS.get())
    wanted = {k: v for k, v in raw.items() if k.startswith(f"{PROJECT}:") or k in PROVIDER_KEYS}
    return load_environment(pulumi.get_stack(), wanted, secret_keys)

