"""The contract every serving target kind implements, and the platforms they stand on.

A target kind (SageMaker, Vertex AI, ...) is one module in this package: a `TargetKind` subclass and its config
model, registered with one line in `registry.py`. The registry is the only place that knows which kinds exist:
the config's `targets[].kind` choices, the "allowed" lists in errors, `selfhost size`, the cost rules and the
stack outputs all come from it, and nothing else branches on a kind.

A kind stands on a `Platform` (AWS, Google Cloud, ...): the foundation every target on that platform shares
(network, key, identity, token secret, image repository), declared once per stack, on demand, and handed to the
kind's `declare` as one object.

Everything here is pure: provider SDKs and ComponentResources are imported inside `declare`, so config
validation, sizing, cost and policy never load them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..catalog.models import ModelFacts
from ..litellm import ROUTER_KEY_ID
from ..router_runtime import RouterEndpoint, RouterRuntime
from ..schema import (
    PROJECT,
    EnvironmentSpec,
    ModelSpec,
    Problem,
    StackSecrets,
    Strict,
    TargetSpec,
    Usage,
    does_not_fit,
)
from ..sizing import LORA_THROUGHPUT_NOTE, memory_fit
from ..weights import Scheme

if TYPE_CHECKING:
    import pulumi

    from ..cost_rules import Rule
    from ..mocking import MockCallCtx, MockFn
    from ..policy import BootScript, ContainerEnvironment
    from ..policy import Rule as PolicyRule
    from ..quotas import QuotaReader, QuotaRule
    from ..sizing_options import Host, Lookup


@dataclass(frozen=True)
class Limitation:
    """Something a kind cannot do, as data: when `applies(target)`, the key `key` (under `targets[i].`) holding
    `value(target)` is reported with `message` and `allowed`."""

    key: str
    applies: Callable[[Any], bool]
    value: Callable[[Any], Any]
    message: str
    allowed: str


def with_router_key(ids: Sequence[str], routed: bool) -> tuple[str, ...]:
    """A target's caller key ids, with one for the stack's router when it routes to the target."""
    return (*ids, *((ROUTER_KEY_ID,) if routed and ROUTER_KEY_ID not in ids else ()))


@dataclass(frozen=True)
class HostShape:
    """What one replica runs on."""

    instance: str
    """The platform's instance or machine type (ml.g5.2xlarge, g2-standard-12)."""
    accelerator: str | None
    accelerator_count: int


@dataclass(frozen=True)
class Endpoint:
    """The one record every kind's `declare` returns: a serving endpoint, described the same way whatever runs
    it. Stack outputs are built from these records (`endpoints.<target name>`), with the same keys for every
    kind; a router in front of several targets reads them."""

    name: str
    """The target's name."""
    kind: str
    platform: str
    region: str
    model: str
    """The Hugging Face id of the model served."""
    invoke_url: pulumi.Input[str]
    """The platform's native inference URL (SageMaker invocations, Vertex predict)."""
    openai_base_url: pulumi.Input[str] | None
    """An OpenAI-compatible base URL (for clients' `base_url`), where the target has one."""
    auth: str
    """How callers authenticate (TargetKind.auth): `aws-sigv4` (IAM), `gcp-oauth` (IAM access token), `api-key`
    (our adapter), `hf-token` (a Hugging Face token), `vpc-only` (the network)."""
    host: HostShape
    min_replicas: int
    max_replicas: int
    image: pulumi.Input[str]
    startup_timeout_seconds: int
    details: dict[str, Any] = field(default_factory=dict)
    """What only this kind has (endpoint ARN, role, private IP, ...), under camelCase keys."""
    router_base_url: pulumi.Input[str] | None = None
    """Where a router on the stack's cluster reaches it, when that is not `openai_base_url` (a Service inside the
    cluster, not its Ingress)."""
    router_key: pulumi.Output[str] | None = None
    """The key a router in front of it presents (a secret; never in the record): set when the stack routes to it."""

    def output(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "platform": self.platform, "region": self.region, "model": self.model,
            "invokeUrl": self.invoke_url, "openaiBaseUrl": self.openai_base_url, "auth": self.auth,
            "host": {"instance": self.host.instance, "accelerator": self.host.accelerator,
                     "acceleratorCount": self.host.accelerator_count},
            "replicas": {"min": self.min_replicas, "max": self.max_replicas},
            "image": self.image, "startupTimeoutSeconds": self.startup_timeout_seconds,
            **({"routerBaseUrl": self.router_base_url} if self.router_base_url is not None else {}), **self.details,
        }


class NoSettings(Strict):
    """A platform that reads no config keys of its own."""


class Platform(ABC):
    """A cloud (or cluster, or hosted service) that target kinds stand on: everything about it lives in its one
    module (components/targets/<platform>.py) and is read from the registry; nothing else names a platform.
    Subclasses set the class attributes and implement the methods; the defaults are what a platform gets when it
    says nothing."""

    name: ClassVar[str]
    """`aws`, `gcp`, ...: the key prices, regions, quotas and stack outputs are filed under."""
    title: ClassVar[str]
    """How people name it (`AWS`, `Google Cloud`): in help texts and errors."""
    settings: ClassVar[type[Strict]] = NoSettings
    """Its config keys, as one model whose fields' aliases are the keys as a stack file writes them: a provider's
    own key (`aws:region`, `gcp:project`) or a section of the project's namespace (`kubernetes`). Validated with
    the rest of the config, errors at the same key paths; read back with `of(env)`."""
    secrets: ClassVar[dict[str, str]] = {}
    """Secret keys of the project's namespace it reads (`kubeconfig`) -> how to set one. The config learns only
    whether each is set (its settings model has a bool field of that alias); the program reads the value."""
    packages: ClassVar[tuple[str, ...]] = ()
    """The Pulumi packages whose resource types it owns (`aws`): their mocks, tag field, Terraform-plan mapping
    and replacement rules are its own."""
    default_region: ClassVar[str | None] = None
    """Where `selfhost size` prices its hosts unless told (None: its kinds' hosts need no region)."""
    regions: ClassVar[tuple[str, ...]] = ()
    """The regions its price rows cover (`selfhost prices refresh` refreshes these by default)."""
    price_file: ClassVar[Path | None] = None
    """Its list prices (components/catalog/pricing's CSV format, every row with `provider` = `name`)."""
    owner_rates: ClassVar[bool] = False
    """Its hardware is the owner's, priced at rates the owner states (`selfhost size --gpu-hour-usd`), not a list."""
    aliases: ClassVar[tuple[str, ...]] = ()
    """Other names `selfhost size --cloud` accepts for it."""
    login: ClassVar[str] = ""
    """What a deploy needs to reach it (the workflow's credentials), for the docs and `selfhost platforms`."""
    online: ClassVar[str | None] = None
    """The module of what it reads from its provider's APIs (`components.aws.online`): `QuotaReader`, a
    `QuotaReader` subclass, and `refresh_prices(regions, options)`, either optional. Named, not imported: only
    `selfhost quota --check` and `selfhost prices refresh` load it (the program and the policy pack never reach the
    network or need credentials; `make lint`'s import contracts keep it so) [none]."""

    quota_file: ClassVar[Path | None] = None
    """Its rows of the quota table (components/catalog/quotas.py's CSV format), where they are not in the shipped
    table (components/catalog/data/quotas.csv)."""
    quota_services: ClassVar[tuple[str, ...]] = ()
    """The services its rows of the quota table (components/catalog/data/quotas.csv) are filed under (`sagemaker`,
    `ec2`): a row naming the platform with another service is an error (`registry.check_quota_table`)."""
    price_sources: ClassVar[tuple[str, ...]] = ()
    """The `selfhost prices refresh` options its `refresh_prices` reads, by their keys in its `options` (the
    command's parameter names, `aws_offers`): one given on the command line selects the platform for the refresh."""
    cost_rules: ClassVar[dict[str, Rule]] = {}
    """Resource type -> the rule that prices it, for the foundation's resources that cost money."""
    free_types: ClassVar[frozenset[str]] = frozenset()
    """Resource types of the foundation that cost nothing by themselves."""
    quota_rules: ClassVar[dict[str, QuotaRule]] = {}
    """Resource type -> the quotas a resource of the platform's own draws on (its router's service)."""
    nat_modes: ClassVar[tuple[str, ...]] = ("none", "single", "per-az")
    """The `network.nat` values it can build."""
    nat_problem: ClassVar[str] = ""
    """Why the other values cannot be built."""

    def of(self, env: EnvironmentSpec) -> Any:
        """Its parsed settings in `env` (an instance of `settings`)."""
        return env.settings(self.name)

    @abstractmethod
    def region(self, env: EnvironmentSpec) -> str | None:
        """The environment's region on this platform, if set."""

    @abstractmethod
    def declare(self, env: EnvironmentSpec, needs: frozenset[str], secrets: StackSecrets
                ) -> tuple[Any, dict[str, Any]]:
        """Declare the foundation, with what its targets `need` (TargetKind.platform_needs), and return it with
        its stack outputs (the region first, as `<platform>Region`)."""

    def validate(self, env: EnvironmentSpec) -> list[Problem]:
        """Problems of the platform's own config, once per stack that has targets on it (or a router on it)."""
        return []

    router_needs: ClassVar[frozenset[str] | None] = None
    """What its foundation needs for a router (as `TargetKind.platform_needs`); None: it cannot host the router."""
    router_secrets_as: ClassVar[str] = "environment"
    """How its router container receives its secrets: `environment` (variables the platform's secret store fills
    at start: the config names them `os.environ/<NAME>`) or `files` (mounted; the config names their paths)."""

    def router_reaches(self, kind: TargetKind, target: Any) -> str | None:
        """Why a router on this platform cannot call `target` (of `kind`: its platform, its network, its auth,
        `kind.auth(target)`); None: it can. Read when the config is checked."""
        return "this platform does not host a router"

    def declare_router(self, env: EnvironmentSpec, foundation: Any, runtime: RouterRuntime) -> RouterEndpoint:
        """Declare the router (`runtime`) on the foundation: its service, its identity allowed to invoke exactly
        `runtime.routes`, its secrets, its HTTPS endpoint inside the stack's network, its logs and monitoring."""
        raise NotImplementedError(f"platform {self.name!r} does not host a router")

    def cost_inputs(self, env: EnvironmentSpec) -> dict[str, Any]:
        """What its cost rules need beside the graph and the list prices (the owner's rates), exported in the
        `costInputs` stack output under the platform's name."""
        return {}

    def tag_problems(self, tags: Mapping[str, str]) -> list[tuple[str, str]]:
        """(key, why) for each of the environment's `tags` its resources cannot carry (its provider's limits on
        tag keys and values), checked once per stack that stands on it [none]."""
        return []

    def tag_field(self, token: str) -> tuple[str, ...] | None:
        """Where a resource of type `token` (one of its packages) carries the environment's tags, as a path into
        its inputs (`("tags",)`, `("metadata", "labels")`); None if it takes none."""
        return None

    def mocks(self) -> Mapping[str, MockFn]:
        """Resource type (or `<package>:`, a whole package) -> what its provider computes for one
        (components/mocking.py), for the offline preview; its provider functions answer through `mock_call`."""
        return {}

    def mock_call(self, token: str, args: Mapping[str, Any], ctx: MockCallCtx) -> dict[str, Any] | None:
        """The result its provider function `token` returns under the offline preview; None: not mocked."""
        return None

    def mock_location(self, config: Mapping[str, str]) -> tuple[str, str]:
        """The (region, project) its mocks fabricate values in, from the stack's raw config."""
        return self.default_region or "", ""

    def terraform(self) -> tuple[Mapping[str, Any], Mapping[str, str], Mapping[str, str]]:
        """For `selfhost export`: Pulumi type -> TfType (components/terraform.py); Terraform provider name -> its
        registry address; and the types with no Terraform resource -> why (the honest "not mapped" list)."""
        return {}, {}, {}

    def replacement_rules(self) -> tuple[Mapping[str, Any], tuple[tuple[str, Any], ...]]:
        """For the plan diff (`selfhost preview --base`): type -> `components.replacement.Rule` (which inputs
        replace the resource), and (type prefix, Rule) fallbacks."""
        return {}, ()

    def replacement_note(self, token: str) -> str | None:
        """For the plan diff's pull request comment: what to say once, under the sources its rules cite, when a
        resource of type `token` (one of its packages) is replaced (why its provider's rules are replacements: a
        provider bridged from Terraform's replaces on a ForceNew argument); None (the default): nothing."""
        return None

    def deletes_before_replace(self, token: str) -> bool:
        """Its provider deletes a resource of type `token` whose name is fixed before it creates the replacement
        (pulumi-kubernetes does, for Kubernetes objects), so the two never clash on the name. False (the default):
        Pulumi creates the replacement first, and the plan diff notes that a fixed name may clash."""
        return False

    def summary_fields(self) -> Mapping[str, tuple[str, ...]]:
        """For `selfhost preview`'s tree: resource type -> the input paths (`rules[0].sseAlgorithm`) worth a glance
        beside a resource of that type (the full set is in --json); default none."""
        return {}

    def policy_rules(self) -> Sequence[PolicyRule]:
        """Its policy rules (components/policy.py `Rule`s, declared in components/<platform>/policies.py, which this
        imports only when asked): `selfhost check` and the policy pack run them after the generic ones
        (components/policies.py), each platform's in registry order. A rule id has one owner: the registry refuses
        an id two platforms declare [none]."""
        return ()

    def scanner_notes(self) -> Mapping[str, str]:
        """Checkov check id -> why its findings on this platform's resources stand though no rule of ours reports
        them: a check the project does not adopt, or what the scanner misreads and on which resources. With the
        rules' exemptions and advisories, what explains every finding `selfhost check --checkov` reads [none]."""
        return {}

    def boot_scripts(self) -> Mapping[str, BootScript]:
        """For the generic rule `secrets-not-in-user-data`: resource type (one of its packages) -> how to read the
        script a resource of that type runs at boot from its inputs, as the machine sees it (decoded) [none]."""
        return {}

    def container_environments(self) -> Mapping[str, ContainerEnvironment]:
        """For the generic rule `secrets-not-in-container-env`: resource type (one of its packages) -> how to read
        the (name, value) environment variables of the containers a resource of that type runs, from its inputs,
        where anyone allowed to describe the resource reads them [none]."""
        return {}

    def _online(self, name: str) -> Any:
        if self.online is None:
            return None
        import importlib

        return getattr(importlib.import_module(self.online), name, None)

    def quota_reader(self) -> QuotaReader | None:
        """Reads the cloud's quotas and usage for `selfhost quota --check` (online's `QuotaReader`)."""
        reader = self._online("QuotaReader")
        return reader() if reader is not None else None

    def refresh_prices(self, regions: Sequence[str], options: Mapping[str, Any]) -> list[Any] | None:
        """Regenerates its price rows from the provider's machine-readable source (online's `refresh_prices`;
        `selfhost prices refresh`): a `components.catalog.pricing.refresh.Result` (rows and warnings) per source
        read, for the `regions` asked (its `regions` unless told). `options`: the command's sources by parameter
        name (its `price_sources` among them, None where not given) and `today` (a datetime.date, the rows' as-of
        where the source gives none). None where it has no refresh."""
        refresh = self._online("refresh_prices")
        return refresh(regions, options) if refresh is not None else None


def provider_tag_field(token: str, sdk: str, fields: tuple[tuple[str, str], ...]) -> tuple[str, ...] | None:
    """The first of `fields` ((Python name, input key) pairs) that the resource class of `token` in the provider
    SDK `sdk` (`pulumi_aws`) takes: read from the SDK's own signature, so the SDK is imported only when asked."""
    import importlib
    import inspect

    try:
        _, module, name = token.split(":")
        mod = importlib.import_module(sdk + (f".{module.split('/')[0]}" if module != "index" else ""))
        params = inspect.signature(getattr(mod, name)._internal_init).parameters
    except (ValueError, ImportError, AttributeError):
        return None
    return next(((wire,) for py, wire in fields if py in params), None)


class TargetKind(ABC):
    """One kind of serving target. Subclasses set the class attributes and implement the methods; the defaults
    below are what a kind gets when it says nothing."""

    kind: ClassVar[str]
    """The `targets[].kind` value users write."""
    config: ClassVar[type[Strict]]
    """Its config model (Pydantic, extra="forbid", with a `kind: Literal[...]` field and the TargetSpec fields)."""
    platform: ClassVar[str]
    """The `Platform.name` it stands on."""
    summary: ClassVar[str]
    """One line for `selfhost size` and the docs."""
    limitations: ClassVar[tuple[Limitation, ...]] = ()
    """What it cannot do, checked in one generic place (components/config.py)."""
    cost_rules: ClassVar[dict[str, Rule]] = {}
    """Resource type -> the rule that prices it, for the types `declare` creates that cost money."""
    free_types: ClassVar[frozenset[str]] = frozenset()
    """Types `declare` creates that cost nothing by themselves."""
    quota_rules: ClassVar[dict[str, QuotaRule]] = {}
    """Resource type -> what it needs of the cloud's quotas (components/quotas.py), for the types that hold
    capacity."""
    engines: ClassVar[tuple[str, ...]] = ("vllm",)
    """The `models[].engine` values it can serve (checked in components/config.py)."""
    needs_egress_for_hub: ClassVar[bool] = False
    """Its containers download `source: hub` weights themselves, from inside the environment's network (so the
    network needs internet egress); False where the platform fetches them (Vertex Model Garden)."""
    stages_hub_adapters: ClassVar[bool] = False
    """Hub adapters are copied into the platform's storage at `pulumi up` (SageMaker's stack bucket), so its hosts
    need no egress for them; False: its hosts download them at start."""
    weight_schemes: ClassVar[tuple[Scheme, ...]] = ("hub",)
    weight_refusals: ClassVar[Mapping[str, str]] = {}
    """Why it cannot read a scheme one would expect of its platform (scheme -> reason), said with the refusal."""
    """Where its hosts can read a model's or an adapter's weights from (components/weights.py): the Hub, and the
    buckets or volumes its platform's identities can be granted (checked in components/config.py)."""

    def adapters_refused(self, env: EnvironmentSpec, target: Any) -> str | None:
        """Why the target cannot serve its model's LoRA adapters though the engine can (a managed image that does
        not load them); None (the default): it serves them."""
        return None

    @abstractmethod
    def validate(self, env: EnvironmentSpec, index: int, target: Any) -> list[Problem]:
        """Problems of `targets[index]` against the rest of the config and the catalogs (after the generic
        checks: its model exists, its replica bounds are ordered, its limitations are reported)."""

    @abstractmethod
    def declare(self, env: EnvironmentSpec, target: Any, foundation: Any,
                hf_token: pulumi.Output[str] | None) -> Endpoint:
        """Declare the target's resources on `foundation` and return its endpoint record."""

    @abstractmethod
    def auth(self, target: Any) -> str:
        """How callers authenticate to the target (the record's `auth`), known from its config alone, so a router
        in front of it is checked before anything is declared."""

    @abstractmethod
    def hosts(self, region: str, lookup: Lookup) -> list[Host]:
        """Every host shape it can serve on in `region`, with its price per replica-hour where known."""

    def gpus(self, record: Mapping[str, Any]) -> set[str]:
        """The catalog names of the GPUs one of its endpoint records (`Endpoint.output()`, as the plan holds it)
        runs on: what the policy pack checks against `allowedGpus`. Default: the host's accelerator."""
        accelerator = str((record.get("host") or {}).get("accelerator") or "")
        return {accelerator} if accelerator else set()

    def platform_needs(self, target: Any) -> frozenset[str]:
        """What the target asks of its platform's foundation: `own-image` (our serving image in the platform's
        registry), `api:<service>` (a cloud API to enable), `endpoint:<service>` (an AWS interface endpoint),
        `proxy-subnet` (Google Cloud's proxy-only subnet for an internal Application Load Balancer), `gpu` (a
        cluster's GPU add-ons). Default: our
        image when `image: selfhost`."""
        return frozenset({"own-image"}) if getattr(target, "image", None) == "selfhost" else frozenset()

    def stored_bytes(self, resources: Sequence[Any], usage: Any) -> float:
        """Bytes its resources keep in the platform's storage (staged weights, captured requests); default 0."""
        return 0.0

    def identity_tags(self, env: EnvironmentSpec, target: TargetSpec) -> dict[str, str]:
        """The tags (AWS) a target's resources carry, with which model they serve and for which target, and what
        the cost engine plans its capacity with: the weights' quantization and the KV cache's dtype (when not
        the defaults)."""
        model = env.model(target.model)
        serving: dict[str, str] = {"selfhost-quantization": model.quantization} if model.quantization != "none" else {}
        if model.kv_cache_dtype != "auto":
            serving["selfhost-kv-cache"] = model.kv_cache_dtype
        if model.base is not None:  # a checkpoint of your own: the cost engine sizes it by its base's facts
            serving["selfhost-base"] = model.base
        if (slots := model.lora) is not None:  # the adapters' memory, which the cost engine's plan leaves out
            serving["selfhost-lora"] = f"{slots.slots}x{slots.rank}"
        return {**env.all_tags, "selfhost-model": model.id, "selfhost-target": target.name, **serving}

    def fit_problems(self, env: EnvironmentSpec, index: int, target: TargetSpec, facts: ModelFacts, key: str,
                     value: Any, gpu_count: int, memory_gib: float, host: str, region: str | None) -> list[Problem]:
        """The problem at `targets[index].key` when the target's model, at its context and concurrency, does not
        fit `gpu_count` GPUs of `memory_gib` in all (named `host`), with the hosts of this kind that fit."""
        model = env.model(target.model)
        fit = memory_fit(facts, model.quantization, model.max_context, target.concurrency, gpu_count, memory_gib,
                         kv_bytes=model.kv_bytes, lora=model.lora)
        if fit.fits:
            return []
        return [target_problem(index, key, value, does_not_fit(model, target.concurrency, fit, host),
                               self.fitting_hosts(model, target.concurrency, region, env.usage))]

    def fitting_hosts(self, model: ModelSpec, concurrency: int, region: str | None, usage: Usage,
                      limit: int = 6) -> str:
        """The hosts of this kind that fit, cheapest $ per 1M tokens first (`selfhost size` ranks the same
        way): the "allowed" text of a does-not-fit problem."""
        from ..catalog.pricing import lookup
        from ..sizing_options import options

        facts = model.resolved_facts()
        assert facts is not None
        lora = model.lora
        rows = options(facts, model.quantization, model.max_context, concurrency,
                       self.hosts(region or "", lookup), usage.input_tokens_per_request,
                       usage.output_tokens_per_request, usage.service_level, lora=lora)
        if not rows:
            return "none here: lower maxContext or concurrency, or quantize" + (", or keep fewer adapters resident "
                                                                               "(maxLoras)" if lora else "")
        prices = [o.usd_per_1m_tokens(o.at_service_level) for o in rows[:limit]]
        shown = [f"{o.host.name} (${usd:.2f}/1M tokens, " if usd is not None else f"{o.host.name} (price unknown, "
                 for o, usd in zip(rows, prices, strict=False)]
        more = ""
        if len(rows) > limit:
            more = (f"; {len(rows) - limit} more: `selfhost size {model.id} --context {model.max_context} "
                    f"--concurrency {concurrency}`")
            if lora:  # `selfhost size` sizes the base model alone
                more += f" (it leaves the adapters out: a host there needs {rows[0].fit.adapters_gib:.1f} GiB spare)"
        note = f"; {LORA_THROUGHPUT_NOTE}" if lora else ""
        hosts = ", ".join(f"{text}{o.fit.margin_gib:.1f} GiB spare)" for text, o in zip(shown, rows, strict=False))
        return hosts + more + note


def target_problem(index: int, key: str, value: Any, message: str, allowed: str | None = None) -> Problem:
    """A problem at `targets[index].key`."""
    return Problem(f"{PROJECT}:targets[{index}].{key}", value, message, allowed)
