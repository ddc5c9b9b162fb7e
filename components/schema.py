"""The parts of the stack configuration every target kind shares: the strict base model, problem records,
models, network, usage and budget. Each target kind's own config model lives beside its code
(components/targets/); components/config.py puts them together into the `Environment`.

Pure: imports no provider SDK.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

import pulumi
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from .catalog.api_prices import DEFAULT_COMPARE_WITH
from .catalog.engines import ENGINES
from .catalog.models import MODELS, ModelFacts
from .sizing import Fit, LoraSlots, ServiceLevel
from .weights import SOURCE_PATTERN, Location, parse

PROJECT = "selfhost-llm"
SECRET_PLACEHOLDER = "[secret]"
"""What a secret value is shown as, wherever it would appear (previews, graphs, reports)."""
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""Pulumi's marker for a value not known until apply."""

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$")]
HfRepoId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")]
CommitSha = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
# What callers send as the OpenAI `model` to reach a LoRA adapter: one path segment, as vLLM's --lora-modules and
# URLs take it.
ServedName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
GgufFile = Annotated[str, Field(pattern=r"^[\w.-]+\.gguf$", max_length=205)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy API reference).
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                           3288, 3653]
Tier = Literal["development", "staging", "production"]
# How long each tier keeps logs by default; production at least a year (audits look back that far).
TIER_LOG_RETENTION_DAYS: dict[str, int] = {"development": 30, "staging": 90, "production": 365}


@dataclass(frozen=True)
class StackSecrets:
    """The stack's secret config values, read once by the program (components never read `pulumi.Config`)."""

    hf_token: pulumi.Output[str] | None = None
    platform: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """The platforms' own secrets (Platform.secrets), by key: those the stack sets."""

    def get(self, key: str) -> pulumi.Output[str] | None:
        return self.platform.get(key)


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
        shown = "(missing)" if self.value is MISSING else _short(self.value)
        text = f"{self.path}: {shown}: {self.message}"
        return f"{text}; allowed: {self.allowed}" if self.allowed else text

    def __repr__(self) -> str:
        return f"Problem({self.path!r}, {self.message!r})"


MISSING = object()
"""The value of a required key that is absent."""


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Strict(BaseModel):
    """camelCase keys as users write them in stack files; unknown keys are errors; parsed values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=False)


class NetworkConfig(Strict):
    cidr: str = "10.20.0.0/16"
    """The VPC's IPv4 range; private subnets are carved from it, one per availability zone."""
    az_count: int = Field(default=2, ge=2, le=6)
    """How many availability zones to span (taken in order from the region's list) when `availabilityZones` is
    not set. Two at least: SageMaker spreads instances across the subnets it is given."""
    availability_zones: list[str] | None = None
    """Pin the zones by name instead, e.g. [us-east-1a, us-east-1b]."""
    nat: Literal["none", "single", "per-az"] = "none"
    """Internet egress. `none`: private only, AWS services through VPC endpoints (models must come from S3).
    `single`: one NAT gateway (cheaper, one AZ's failure cuts egress). `per-az`: one NAT gateway per zone."""
    flow_log_retention_days: LogRetentionDays | None = None
    """Default: the environment's `logRetentionDays`."""

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
    hidden_size: int | None = Field(default=None, gt=0)
    """config.json's `hidden_size`: sizes LoRA adapters (default: estimated from paramsBillion and layers)."""


class AdapterSpec(Strict):
    """A LoRA adapter served on its model's base weights: callers ask for it by `name`."""

    name: ServedName
    """What callers send as the OpenAI `model` to be answered with the adapter (listed in /v1/models)."""
    source: str = Field(default="hub", pattern=SOURCE_PATTERN)
    """Where its weights are: `hub` (`id` at `revision`), or a bucket or volume of the team's (s3://, gs://,
    pvc://) holding the adapter's files (a PEFT folder for vLLM; for llama.cpp, the folder of its GGUF `file`)."""
    id: HfRepoId | None = None
    """With `source: hub`: the adapter's Hugging Face repository."""
    revision: CommitSha | None = None
    """With `source: hub`: the commit to serve, pinned like a model's."""
    rank: int = Field(ge=1, le=1024)
    """Its LoRA rank (`r` in its adapter_config.json): sizes the engine's LoRA slots."""
    file: GgufFile | None = None
    """For llama.cpp: the adapter's GGUF file (a LoRA converted with llama.cpp's convert_lora_to_gguf.py)."""
    sha256: Sha256 | None = None
    """For llama.cpp: the GGUF file's SHA-256, checked after every download."""

    @property
    def location(self) -> Location:
        return parse(self.source)

    @property
    def origin(self) -> str:
        """Where it comes from, in one string: `hf://<id>@<revision>` (as our adapter's SELFHOST_ADAPTERS takes a
        PEFT folder of the Hub, downloaded at start, pinned) or its bucket or volume URI."""
        return f"hf://{self.id}@{self.revision}" if self.source == "hub" else self.source


class ModelSpec(Strict):
    name: Slug
    """Our key for the model: used in resource names, so renaming it replaces resources."""
    id: HfRepoId
    """Hugging Face repository id, e.g. mistralai/Mistral-7B-Instruct-v0.3; for a checkpoint of your own (a source
    in your bucket), a name of the same form (acme/llama-3.1-8b-support): what the model is served as."""
    revision: CommitSha | None = None
    """The commit to serve, pinned so every deployment serves the same weights. Required with `source: hub` or
    `s3` (staged from the Hub); a bucket or volume of your own is pinned by its prefix instead."""
    engine: Literal["vllm", "tgi", "lmi", "llamacpp"] = "vllm"
    quantization: Literal["none", "fp8", "int8", "awq", "gptq", "nf4", "q4_k_m", "q5_k_m", "q6_k", "q8_0"] = "none"
    """The weights' quantization; for llama.cpp, the GGUF file's type (q4_k_m, ...)."""
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"
    """The KV cache's: `auto` (the model's dtype, bf16/fp16) or `fp8` (vLLM's --kv-cache-dtype fp8: half the
    bytes per token, so about twice the concurrent requests fit, at a small accuracy cost)."""
    # The same names as `[\w.-]{1,200}\.gguf`, bounded by length instead: a bounded repetition of the Unicode
    # `\w` costs pydantic-core's regex about 0.1 s to compile, at every start of the CLI.
    file: GgufFile | None = None
    """For llama.cpp: the GGUF file of the repository (or of the source's folder) to serve."""
    sha256: Sha256 | None = None
    """For llama.cpp: the GGUF file's SHA-256 (the Hub's LFS object id), checked after every download."""
    max_context: int = Field(default=4096, gt=0, le=1_048_576)
    """Longest prompt + completion, in tokens, the engine admits."""
    source: str = Field(default="hub", pattern=SOURCE_PATTERN)
    """Where serving hosts fetch weights: `hub` downloads from Hugging Face at start (needs internet egress);
    `s3` reads the stack's artifacts bucket under models/<id>/<revision>/ (works with network isolation, no token);
    `s3://bucket/prefix`, `gs://bucket/prefix` or `pvc://claim/path`: a checkpoint of your own, where you keep it
    (each target's identity reads exactly that prefix). Which a target can read depends on its kind."""
    stage: bool = True
    """With `source: s3`: copy the pinned revision from the Hub into the bucket at `pulumi up` (`selfhost stage`);
    false when the weights are put there otherwise (a fine-tuned model that is not on the Hub)."""
    base: HfRepoId | None = None
    """The catalog model a checkpoint of your own was fine-tuned from: its facts size it when `facts` is unset."""
    facts: FactsOverride | None = None
    adapters: list[AdapterSpec] = []
    """LoRA adapters served on these weights, each by its own name (vLLM on GPUs, llama.cpp on CPUs)."""
    max_loras: int | None = Field(default=None, ge=1, le=256)
    """Adapters resident on the GPU at once (vLLM's --max-loras; the rest wait in host memory): default all of
    them, up to 8. Each slot holds an adapter of the largest rank, in GPU memory the fit counts."""

    @property
    def kv_bytes(self) -> float:
        """Bytes per KV cache element."""
        return 1.0 if self.kv_cache_dtype == "fp8" else 2.0

    @property
    def location(self) -> Location:
        return parse(self.source)

    @property
    def from_hub(self) -> bool:
        """Whether a host serving it downloads anything from the Hub at start (the model or an adapter): only then
        does it need the token and egress."""
        return self.location.scheme == "hub" or any(a.location.scheme == "hub" for a in self.adapters)

    @property
    def lora_slots(self) -> int:
        """LoRA adapters the engine keeps on the GPU at once (0 without adapters)."""
        return min(len(self.adapters), self.max_loras or DEFAULT_MAX_LORAS) if self.adapters else 0

    @property
    def max_adapter_rank(self) -> int:
        return max((a.rank for a in self.adapters), default=0)

    @property
    def lora(self) -> LoraSlots | None:
        """The GPU memory its adapters take: the engine's resident slots, each at the smallest rank setting that
        holds the largest adapter (vLLM's --max-lora-rank, as catalog/engines.py lora_rank_setting picks it); at the
        largest rank itself for an engine with no fixed settings, or above its largest (a problem the config reports
        on its own); None without adapters."""
        engine = ENGINES[self.engine]
        if not self.lora_slots or engine.lora is None:
            return None
        rank = self.max_adapter_rank
        return LoraSlots(self.lora_slots, engine.lora.setting(rank))

    @property
    def origin(self) -> str:
        """Where its weights come from, in one string: `hf://<id>@<revision>`, the stack's bucket, or a URI."""
        if self.source == "hub":
            return f"hf://{self.id}@{self.revision}"
        return f"s3 (staged hf://{self.id}@{self.revision})" if self.source == "s3" else self.source

    def served(self) -> dict[str, Any]:
        """What an endpoint record says it serves (`weights`, and `adapters`: name -> origin and rank), which the
        plan diff compares between two previews."""
        return {"weights": self.origin,
                **({"adapters": {a.name: f"{a.origin} (rank {a.rank})" for a in self.adapters}}
                   if self.adapters else {})}

    def resolved_facts(self) -> ModelFacts | None:
        """The facts the model is sized with: its own `facts`, else the catalog's for its id, else for its base."""
        if self.facts is not None:
            return ModelFacts(**self.facts.model_dump())
        return MODELS.get(self.id) or (MODELS.get(self.base) if self.base else None)


DEFAULT_MAX_LORAS = 8
"""Resident adapters when `maxLoras` is unset and there are more: vLLM's own default is 1, which makes every switch
between more than one adapter a load from host memory; 8 keeps a small set warm at a bounded memory cost."""


class Budget(Strict):
    monthly_usd: float | None = Field(default=None, gt=0)
    """Monthly ceiling for the expected cost; a plan above it fails `selfhost preview` and the policy pack."""


HOURS_PER_MONTH = 730  # the Infracost convention
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


class Usage(Strict):
    """The load the cost estimate assumes: it sets expected replicas, $ per 1M tokens and the API comparison.

    The one usage model: the config's `usage` section, the `costInputs.usage` stack output (`wire()`, read back
    with `from_wire`), and what the cost engine prices with."""

    hours_per_day: float = Field(default=24, gt=0, le=24)
    """Hours a day the traffic lasts; the rest of the day endpoints sit at their minimum replicas."""
    requests_per_day: int = Field(default=10_000, ge=0)
    input_tokens_per_request: int = Field(default=500, ge=1)
    output_tokens_per_request: int = Field(default=200, ge=1)
    min_tokens_per_second_per_stream: float | None = Field(default=10, gt=0)
    """The service level capacity is planned at: every stream decodes at least this fast (10: a 100 ms time per
    output token, an interactive chat). Each replica is planned with the most concurrent requests that still meet
    it and `maxTimeToFirstTokenSeconds`; null: no floor (plan at saturation)."""
    max_time_to_first_token_seconds: float | None = Field(default=2.0, gt=0)
    """Ceiling on the time to first token at the planned concurrency; null: none."""
    compare_with: list[str] = Field(default_factory=lambda: list(DEFAULT_COMPARE_WITH))
    """Pay-per-token APIs to compare with: any model of LiteLLM's price map (components/catalog/api_prices.py),
    by its key there (gpt-4.1-nano, gemini/gemini-2.5-flash, claude-haiku-4-5, ...)."""

    @field_validator("compare_with")
    @classmethod
    def _known_apis(cls, v: list[str]) -> list[str]:
        from .catalog.api_prices import api_price, unknown_api_message

        unknown = [k for k in v if api_price(k) is None]
        if unknown:
            raise ValueError(unknown_api_message(unknown[0]))
        return v

    @property
    def tokens_per_month(self) -> float:
        return self.requests_per_day * DAYS_PER_MONTH * (self.input_tokens_per_request + self.output_tokens_per_request)

    @property
    def service_level(self) -> ServiceLevel:
        return ServiceLevel(self.min_tokens_per_second_per_stream, self.max_time_to_first_token_seconds)

    @property
    def busy_requests_per_s(self) -> float:
        return self.requests_per_day / (self.hours_per_day * 3600)

    def wire(self) -> dict[str, Any]:
        """As the stack exports it (camelCase keys)."""
        return self.model_dump(by_alias=True)

    @classmethod
    def from_wire(cls, data: dict[str, Any] | None) -> Usage:
        """From `wire()` output; keys it lacks take their defaults, but for `compareWith`, which is then empty
        (a graph that names no APIs to compare with gets no comparison)."""
        return cls.model_validate({"compareWith": [], **(data or {})})


class ReplicaBounds(Protocol):
    @property
    def min_replicas(self) -> int: ...

    @property
    def max_replicas(self) -> int: ...


class TargetSpec(Protocol):
    """What every target kind's config model has (each declares its fields itself, in the order users see).
    Read-only, as parsed config is: a kind may narrow a field's type (`kind: Literal["sagemaker"]`)."""

    @property
    def kind(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def concurrency(self) -> int: ...

    @property
    def image(self) -> str: ...

    @property
    def scaling(self) -> ReplicaBounds: ...


class EnvironmentSpec(Protocol):
    """What target kinds and platforms read of the environment (config.Environment): they depend on this,
    not on the config module, which depends on them through the registry."""

    @property
    def name(self) -> str: ...

    @property
    def all_tags(self) -> dict[str, str]: ...

    @property
    def network(self) -> NetworkConfig: ...

    @property
    def models(self) -> list[ModelSpec]: ...

    @property
    def targets(self) -> Sequence[TargetSpec]: ...

    @property
    def usage(self) -> Usage: ...

    @property
    def tier(self) -> str: ...

    @property
    def retention_days(self) -> int: ...
    """How long logs are kept (`logRetentionDays`, else the tier's default)."""

    def settings(self, platform: str) -> Any: ...
    """A platform's parsed settings (Platform.settings; read them with `Platform.of(env)`)."""

    @property
    def hf_token(self) -> bool: ...

    @property
    def router(self) -> Any: ...
    """The `router` section (routing.RouterSpec), or None."""

    @property
    def router_platform(self) -> str | None: ...
    """Where the router runs, or None without one."""

    def routed(self, target: str) -> bool: ...
    """Whether the router sends requests to the target."""

    def model(self, name: str) -> ModelSpec: ...


def no_fp8(gpu: str, model: ModelSpec) -> str:
    return f"{gpu} GPUs have no fp8 support (model '{model.name}' uses quantization fp8)"


def does_not_fit(model: ModelSpec, concurrency: int, fit: Fit, host: str) -> str:
    return (f"model '{model.name}' needs {fit.required_gib:.1f} GiB ({fit.terms_text(model.max_context, concurrency)}) "
            f"but {host} offers {fit.available_gib:.1f} GiB usable")
