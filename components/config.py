"""The typed stack configuration: one environment, parsed once, validated whole before any resource exists.

`load_environment` takes the stack's raw config (what `pulumi config` holds for the project namespace plus the
provider keys we read) and returns a frozen `Environment`, or raises `ConfigError` listing every problem with its
key path, the bad value and what is allowed. Components receive parts of the `Environment`, never the raw config.

The shared parts of the model are in schema.py; each target kind brings its own (components/targets/), and the
registry says which kinds exist. Pure: imports no provider SDK.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar, Union

import pulumi
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator

from .catalog.engines import ENGINES
from .catalog.models import MODELS
from .routing import RouterSpec, router_platform, router_problems
from .schema import (
    MISSING,
    PROJECT,
    SECRET_PLACEHOLDER,
    TIER_LOG_RETENTION_DAYS,
    Budget,
    ConfigError,
    LogRetentionDays,
    ModelSpec,
    NetworkConfig,
    Problem,
    StackSecrets,
    Strict,
    TargetSpec,
    Tier,
    Usage,
)
from .targets.registry import KINDS, PLATFORMS, kind_of
from .weights import allowed as allowed_sources
from .weights import parse as parse_source

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = ["SECRET_PLACEHOLDER", "ConfigError", "Environment", "Problem", "from_pulumi_config", "load_environment"]

# The stack's own secret (every platform's containers may fetch gated weights with it); each platform adds its own
# (Platform.secrets). The config model only learns whether they are set.
HF_TOKEN_KEY = f"{PROJECT}:hfToken"


def _full_key(alias: str) -> str:
    """A settings field's alias as a stack file's key: a provider's own (`aws:region`) or the project's."""
    return alias if ":" in alias else f"{PROJECT}:{alias}"


def secret_config_keys() -> dict[str, str]:
    """Every secret key the program reads -> how to set it."""
    return {HF_TOKEN_KEY: "set it with `pulumi config set --secret hfToken <token>`",
            **{_full_key(key): how for p in PLATFORMS.values() for key, how in p.secrets.items()}}


def platform_keys() -> dict[str, tuple[str, str]]:
    """Every key a platform reads (its settings' aliases, its secrets included) -> (platform, alias)."""
    return {_full_key(f.alias): (p.name, f.alias) for p in PLATFORMS.values()
            for f in p.settings.model_fields.values() if f.alias}


# The discriminated union of targets puts the branch's tag in error locations; users never wrote it.
TARGET_KINDS = tuple(KINDS)

if TYPE_CHECKING:
    # The union below is built from the registry at run time, which a type checker cannot follow: to it, a
    # target is what every kind's config model has (schema.TargetSpec).
    Target: TypeAlias = TargetSpec
else:
    # One config model per registered kind, told apart by `kind`.
    Target = Annotated[Union[tuple(k.config for k in KINDS.values())], Field(discriminator="kind")]  # noqa: UP007


class Environment(Strict):
    project: str = PROJECT
    stack: str
    environment: str = Field(default="", pattern=r"^$|^[a-z][a-z0-9-]{0,30}$")
    """Tag value and name prefix; empty means the stack name."""
    owner: str = Field(default="ml-platform", min_length=1, max_length=256)
    tier: Tier = "development"
    """The environment's class: it sets how long logs are kept and which policies are stricter."""
    log_retention_days: LogRetentionDays | None = None
    """Days every log group keeps its logs (default by tier: development 30, staging 90, production 365)."""
    allowed_gpus: list[str] | None = None
    """The GPU types endpoints may run on (catalog names: A10G, L4, ...); the policy pack refuses others. Unset:
    any."""
    network: NetworkConfig = NetworkConfig()
    models: list[ModelSpec] = Field(min_length=1)
    targets: list[Target] = Field(min_length=1)
    router: RouterSpec | None = None
    """One entry point in front of several targets, on the stack's cluster (components/routing.py)."""
    budget: Budget = Budget()
    usage: Usage = Usage()
    tags: dict[str, str] = {}
    hf_token: bool = False
    """Whether a Hugging Face token is configured. The value itself never enters this model."""
    _platforms: dict[str, Any] = PrivateAttr(default_factory=dict)
    """Each platform's parsed settings (Platform.settings), validated with the rest."""

    def settings(self, platform: str) -> Any:
        """The platform's settings: its config keys, parsed (components/targets/<platform>.py)."""
        return self._platforms[platform]

    @field_validator("allowed_gpus")
    @classmethod
    def _gpus(cls, v: list[str] | None) -> list[str] | None:
        from .catalog.gpus import GPUS

        unknown = [g for g in v or [] if g not in GPUS]
        if unknown:
            raise ValueError(f"unknown GPU {unknown[0]!r}; known: {', '.join(GPUS)}")
        return v

    @property
    def name(self) -> str:
        return self.environment or self.stack

    @property
    def retention_days(self) -> int:
        return self.log_retention_days or TIER_LOG_RETENTION_DAYS[self.tier]

    @property
    def all_tags(self) -> dict[str, str]:
        """Tags on every taggable resource: ours first, so a stack cannot drop them by accident."""
        return {**self.tags, "environment": self.name, "owner": self.owner, "managed-by": "pulumi",
                "project": self.project}

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)

    def routed(self, target: str) -> bool:
        return self.router is not None and target in self.router.order

    @property
    def router_platform(self) -> str | None:
        """Where the router runs (components/routing.py router_platform), or None without one."""
        return router_platform(self, self.router) if self.router is not None else None

    @property
    def platforms_used(self) -> tuple[str, ...]:
        """The platforms the stack stands on, as its targets first name them, then the router's."""
        used = [kind_of(t).platform for t in self.targets] + ([self.router_platform] if self.router_platform else [])
        return tuple(dict.fromkeys(used))


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_environment(stack: str, raw: dict[str, Any],
                     secret_keys: set[str] | frozenset[str] = frozenset()) -> Environment:
    """Validate `raw` (full config keys, e.g. 'selfhost-llm:models', values as Pulumi passes them: strings,
    objects as JSON text) into an Environment. Raises ConfigError with every problem."""
    problems: list[Problem] = []
    secrets, owned = secret_config_keys(), platform_keys()
    data: dict[str, Any] = {"stack": stack, "hfToken": False}
    per_platform: dict[str, dict[str, Any]] = {name: {} for name in PLATFORMS}
    for key, value in raw.items():
        namespace, _, short = key.partition(":")
        if key in secrets:
            if key not in secret_keys:
                problems.append(Problem(key, "(plain text, not shown)", "must be a secret", secrets[key]))
            value = bool(value)
        if key in owned:
            owner, alias = owned[key]
            per_platform[owner][alias] = _decode(value) if namespace == PROJECT else value
        elif namespace == PROJECT:
            data[short] = _decode(value)
        # Keys of other namespaces (aws:profile, ...) belong to their providers.

    env, structural = _validate(Environment, data)
    problems += structural
    settings: dict[str, Any] = {}
    for name, platform_ in PLATFORMS.items():
        settings[name], structural = _validate(platform_.settings, per_platform[name])
        problems += structural
    if env is not None and all(v is not None for v in settings.values()):
        env._platforms = settings
        problems += _semantic_problems(env)
    if problems or env is None:  # no Environment comes without a problem
        raise ConfigError(stack, problems)
    return env


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], data: dict[str, Any]) -> tuple[M | None, list[Problem]]:
    """Validate the structure. An unknown key is reported and then set aside, so the checks across keys still
    run on the rest (dropping it changes no other value); any other structural problem stops there, since
    cross-key checks on a guessed value would mislead."""
    data = copy.deepcopy(data)
    problems: list[Problem] = []
    while True:
        try:
            return model.model_validate(data), problems
        except ValidationError as exc:
            errors = exc.errors()
            problems += [_from_pydantic(e, model) for e in errors]
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


def _model_at(loc: tuple, root: type[BaseModel]) -> type[BaseModel] | None:
    """The model class whose field set applies at `loc` (for listing allowed keys)."""
    cls: Any = root
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


def _from_pydantic(err: ErrorDetails, root: type[BaseModel]) -> Problem:
    loc = tuple(err["loc"])
    path = _path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1], root)
        # Every field has an alias: the models' alias generator gives each its camelCase key. At the top, the
        # platforms' sections of the project's namespace are keys too.
        keys = [f.alias for f in parent.model_fields.values() if f.alias is not None
                and f.alias not in ("project", "stack")] if parent else []
        if parent is Environment:
            keys += [alias for full, (_, alias) in platform_keys().items()
                     if full.startswith(f"{PROJECT}:") and full not in secret_config_keys()]
        return Problem(path, err["input"], "unknown key", ", ".join(keys) if parent else None)
    if kind == "missing":
        return Problem(path, MISSING, "required key is missing")
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        given = err["input"].get("kind", MISSING) if isinstance(err["input"], dict) else err["input"]
        return Problem(path + ".kind", given, "unknown target kind", ", ".join(TARGET_KINDS))
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return Problem(path, err["input"], "not an allowed value", expected)
    if kind == "string_pattern_mismatch":
        parent = _model_at(loc[:-1], root)
        field = next((f for f in parent.model_fields.values() if f.alias == loc[-1]), None) if parent else None
        help_key = "adapter name" if loc[-1] == "name" and "adapters" in loc else str(loc[-1])
        return Problem(path, err["input"], "has the wrong form", _PATTERN_HELP.get(help_key) or (
            field.description if field and field.description else (err.get("ctx") or {}).get("pattern")))
    message = err["msg"].removeprefix("Value error, ")
    return Problem(path, err["input"], message[:1].lower() + message[1:])


_PATTERN_HELP = {
    "name": "lowercase letters, digits and '-', 2-24 characters, starting with a letter",
    "adapter name": "letters, digits, '.', '_' and '-', up to 64 characters, starting with a letter or digit (what "
                    "callers send as the OpenAI model)",
    "revision": "a 40-character lowercase hex commit SHA from the model's Hugging Face repository",
    "id": "a Hugging Face repository id, 'owner/name'",
    "source": "hub, s3 (the stack's artifacts bucket), s3://bucket/prefix, gs://bucket/prefix or pvc://claim/path",
    "environment": "lowercase letters, digits and '-', starting with a letter, or empty for the stack name",
}


def _semantic_problems(env: Environment) -> list[Problem]:
    """Checks across keys and against the catalogs; runs only on a structurally valid config. The checks every
    target shares are here; each kind checks the rest (TargetKind.validate)."""
    problems: list[Problem] = []
    p = lambda path, *rest: problems.append(Problem(f"{PROJECT}:{path}", *rest))  # noqa: E731

    model_names = [m.name for m in env.models]
    for i, m in enumerate(env.models):
        if model_names.count(m.name) > 1 and model_names.index(m.name) != i:
            p(f"models[{i}].name", m.name, "duplicate model name")
        location = m.location
        if location.scheme in ("hub", "stack") and m.revision is None:
            p(f"models[{i}].revision", MISSING, f"required with source {location.uri!r}: the Hub commit to serve",
              _PATTERN_HELP["revision"])
        facts = m.resolved_facts()
        if m.base is not None and m.base not in MODELS and m.facts is None:
            p(f"models[{i}].base", m.base, f"not a model of the catalog: its facts are unknown; give models[{i}].facts",
              ", ".join(sorted(MODELS)))
            continue
        if facts is None and location.owned:
            p(f"models[{i}].facts", MISSING, f"a checkpoint of your own (source {m.source!r}) has no Hub card to "
              "size it by: give its facts {paramsBillion, layers, kvHeads, headDim, maxContext}, or the catalog "
              f"model it was fine-tuned from as models[{i}].base", ", ".join(sorted(MODELS)))
            continue
        if facts is None:
            p(f"models[{i}].id", m.id, "no facts for this model in the catalog; add models[{i}].facts "
              "{paramsBillion, layers, kvHeads, headDim, maxContext}", ", ".join(sorted(MODELS)))
            continue
        problems += _adapter_problems(env, i, m, set(model_names))
        if m.max_context > facts.max_context:
            p(f"models[{i}].maxContext", m.max_context, f"longer than {m.id} supports", f"1..{facts.max_context}")
        engine = ENGINES[m.engine]
        if m.quantization not in engine.quantization:
            p(f"models[{i}].quantization", m.quantization, f"not supported by engine '{m.engine}'",
              ", ".join(engine.quantization))
        if m.kv_cache_dtype != "auto" and not engine.kv_cache_dtype:
            p(f"models[{i}].kvCacheDtype", m.kv_cache_dtype, f"engine '{m.engine}' is not configured for a "
              "quantized KV cache here", "auto; or engine vllm")
        if engine.gguf and m.file is None:
            p(f"models[{i}].file", MISSING, f"engine '{m.engine}' serves one GGUF file of the repository",
              "the file's name, e.g. qwen2.5-1.5b-instruct-q4_k_m.gguf")
        if not engine.gguf:
            for key, value in (("file", m.file), ("sha256", m.sha256)):
                if value is not None:
                    p(f"models[{i}].{key}", value, f"only for GGUF files (engine llamacpp); '{m.engine}' serves "
                      "the repository", "unset")
        if facts.gated and location.scheme in ("hub", "stack") and not env.hf_token:
            problems.append(Problem(f"{PROJECT}:hfToken", MISSING,
                                    f"required secret: models[{i}].id {m.id!r} is a gated repository",
                                    "set it with `pulumi config set --secret hfToken <token>`"))
        hub_adapters = any(a.source == "hub" for a in m.adapters)
        if env.network.nat == "none" and any(
            t.model == m.name and kind_of(t).needs_egress_for_hub
            and (m.source == "hub" or (hub_adapters and not kind_of(t).stages_hub_adapters)) for t in env.targets
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
        kind = kind_of(t)
        model = env.model(t.model)
        if model.engine not in kind.engines:
            p(f"models[{model_names.index(t.model)}].engine", model.engine,
              f"{kind.kind} targets (targets[{i}]) do not serve it", ", ".join(kind.engines))
            continue
        problems += [Problem(f"{PROJECT}:targets[{i}].{limit.key}", limit.value(t), limit.message, limit.allowed)
                     for limit in kind.limitations if limit.applies(t)]
        at = model_names.index(t.model)
        for key, source in (("source", model.source),
                            *((f"adapters[{j}].source", a.source) for j, a in enumerate(model.adapters))):
            scheme = parse_source(source).scheme
            if scheme not in kind.weight_schemes:
                reason = f": {kind.weight_refusals[scheme]}" if scheme in kind.weight_refusals else ""
                p(f"models[{at}].{key}", source,
                  f"{kind.kind} targets (targets[{i}]) cannot read weights there{reason}",
                  allowed_sources(kind.weight_schemes))
        if model.adapters and (refused := kind.adapters_refused(env, t)):
            p(f"models[{at}].adapters", [a.name for a in model.adapters],
              f"{kind.kind} targets (targets[{i}]) cannot serve LoRA adapters here: {refused}",
              "no adapters on this target's model")
        problems += kind.validate(env, i, t)
    if env.router is not None:
        problems += router_problems(env, env.router)
    for platform in (PLATFORMS[name] for name in env.platforms_used):
        problems += platform.validate(env)
        problems += [Problem(f"{PROJECT}:tags", {key: env.tags[key]}, message)
                     for key, message in platform.tag_problems(env.tags)]
        if env.network.nat not in platform.nat_modes:
            p("network.nat", env.network.nat, platform.nat_problem, ", ".join(platform.nat_modes))
    return problems



def _adapter_problems(env: Environment, i: int, m: ModelSpec, taken: set[str]) -> list[Problem]:
    """The LoRA adapters of `models[i]`: an engine that serves them, ranks it holds, names of their own, sources
    that pin what they serve."""
    problems: list[Problem] = []
    p = lambda path, *rest: problems.append(Problem(f"{PROJECT}:models[{i}].{path}", *rest))  # noqa: E731
    if not m.adapters:
        if m.max_loras is not None:
            p("maxLoras", m.max_loras, "the model has no adapters", "unset, or add models[].adapters")
        return problems
    engine = ENGINES[m.engine]
    if engine.lora is None:
        p("adapters", [a.name for a in m.adapters], f"engine '{m.engine}' cannot serve LoRA adapters here: "
          f"{engine.lora_refused}", ", ".join(n for n, e in ENGINES.items() if e.lora is not None))
        return problems
    names = [a.name for a in m.adapters]
    largest = max(engine.lora.ranks, default=None)
    for j, a in enumerate(m.adapters):
        where = f"adapters[{j}]"
        if a.name in taken:
            p(f"{where}.name", a.name, "the name of a model: callers could not tell the adapter from it",
              "a name no model and no other adapter has")
        elif names.index(a.name) != j:
            p(f"{where}.name", a.name, "duplicate adapter name", "a name no model and no other adapter has")
        if largest is not None and a.rank > largest:
            p(f"{where}.rank", a.rank, f"above the largest LoRA rank engine '{m.engine}' serves ({largest}; "
              f"{engine.lora.source})", f"1..{largest}")
        if a.source == "hub":
            for key, value in (("id", a.id), ("revision", a.revision)):
                if value is None:
                    p(f"{where}.{key}", MISSING, "required for an adapter from the Hub (source hub)",
                      _PATTERN_HELP[key])
        elif a.revision is not None:
            p(f"{where}.revision", a.revision, f"only for adapters from the Hub: source {a.source!r} is pinned by "
              "its path", "unset")
        if engine.gguf and a.file is None:
            p(f"{where}.file", MISSING, f"engine '{m.engine}' loads an adapter from one GGUF file",
              "the adapter's .gguf file (llama.cpp's convert_lora_to_gguf.py writes it)")
        if not engine.gguf:
            for key, value in (("file", a.file), ("sha256", a.sha256)):
                if value is not None:
                    p(f"{where}.{key}", value, f"only for GGUF adapters (engine llamacpp); '{m.engine}' loads a "
                      "PEFT folder", "unset")
    return problems


def from_pulumi_config() -> Environment:
    """Read the running stack's config, as the Pulumi engine passes it, into an Environment."""
    from pulumi.runtime import config as rc

    raw = {**rc.get_config_env(), **rc.CONFIG.get()}
    secret_keys = set(rc.get_config_secret_keys_env()) | set(rc._SECRET_KEYS.get())
    owned = platform_keys()
    wanted = {k: v for k, v in raw.items() if k.startswith(f"{PROJECT}:") or k in owned}
    return load_environment(pulumi.get_stack(), wanted, secret_keys)



def stack_secrets(env: Environment) -> StackSecrets:
    """The running stack's secret values (the token if the config says it is set; each platform's that are set),
    read once, as secret Outputs."""
    config = pulumi.Config()
    platform = {key: value for p in PLATFORMS.values() for key in p.secrets
                if (value := config.get_secret(key)) is not None}
    return StackSecrets(hf_token=config.get_secret("hfToken") if env.hf_token else None, platform=platform)
