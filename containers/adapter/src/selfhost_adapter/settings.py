"""Settings: one table of knobs, each readable from a flag or from the environment (containers set env vars).

A flag wins over the environment, the environment over the default. The platform's own variables
(`AIP_HTTP_PORT`, `AIP_HEALTH_ROUTE`, `AIP_PREDICT_ROUTE`, `SAGEMAKER_BIND_TO_PORT`, `HF_MODEL_ID`) are read
too, so an image needs no extra configuration on SageMaker or Vertex.
"""

from __future__ import annotations

import argparse
import os
import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .azure_identity import settings_problems as keyvault_problems


def _names(text: str) -> tuple[str, ...]:
    return tuple(name for name in (part.strip() for part in text.split(",")) if name)


@dataclass(frozen=True)
class Lora:
    """A LoRA adapter served on the base model: a request whose `model` is `name` is answered with it."""

    name: str
    source: str
    """A local path (vLLM: a PEFT folder; llama.cpp: a .gguf LoRA file), or `hf://owner/repo@<commit>` (a PEFT
    folder on the Hub) or `hf://owner/repo@<commit>/file.gguf[#sha256=<hex>]` (one file)."""


@dataclass(frozen=True)
class HubSource:
    """An adapter on the Hugging Face Hub, pinned to a commit; `file` None is a PEFT folder."""

    repo: str
    revision: str
    file: str | None
    sha256: str | None


LORA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LORA_NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', the first a letter or digit"
HUB_FORMS = "hf://owner/repo@<40-hex commit> (a PEFT folder) or hf://owner/repo@<commit>/file.gguf[#sha256=<hex>]"
_HUB = re.compile(r"hf://(?P<repo>[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*)@(?P<revision>[0-9a-f]{40})"
                  r"(?:/(?P<file>[^#]+))?(?:#sha256=(?P<sha256>[0-9a-fA-F]{64}))?")
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")
"""The files of a PEFT LoRA folder that vLLM loads."""


def hub_source(source: str) -> HubSource | None:
    """The Hub location an `hf://` source names; None for a local path. Raises ValueError for a malformed one."""
    if not source.startswith("hf://"):
        return None
    m = _HUB.fullmatch(source)
    if m is None or (m["sha256"] and not m["file"]):
        raise ValueError(source)
    # Repo and file become parts of a path under the cache: nothing may climb out of it.
    parts = m["file"].split("/") if m["file"] else []
    if ".." in m["repo"] or "--" in m["repo"] or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise ValueError(source)
    return HubSource(m["repo"], m["revision"], m["file"], m["sha256"].lower() if m["sha256"] else None)


def _adapters(text: str) -> tuple[Lora, ...]:
    # Checked in _check, where every bad item is named: an item without `=` has no source.
    pairs = (item.partition("=") for item in text.split(",") if item.strip())
    return tuple(Lora(name.strip(), source.strip()) for name, _, source in pairs)


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


@dataclass(frozen=True)
class Settings:
    """Every setting of the adapter. Units are in the names."""

    platform: str = "serve"
    """Which contracts to serve: `serve` (SageMaker: the argument SageMaker starts a container with), `vertex`,
    `openai`, or `all` (what `selfhost serve` uses). The OpenAI routes are always on."""
    engine: str = "llamacpp"
    """`vllm`, `llamacpp` (llama-cpp-python's server), or `external` (proxy to --engine-url, start nothing)."""
    model: str = ""
    """Weights for the engine: a path or a Hugging Face id. Default: $HF_MODEL_ID, else /opt/ml/model."""
    model_name: str = ""
    """The name clients use in `model` and /v1/models lists. Default: the model's file or repo name."""
    model_aliases: tuple[str, ...] = ()
    """Other names clients may send in `model` (comma-separated), served by the same model. Any other name is
    a 404, as OpenAI answers."""
    adapters: tuple[Lora, ...] = ()
    """LoRA adapters served on the model, `name=source` comma-separated (see `Lora`); clients name one in
    `model`. hf:// sources are downloaded into `adapters_dir` before the engine starts."""
    adapters_dir: str = ""
    """Where hf:// adapters are downloaded. Default: $HF_HOME/selfhost-adapters, else /tmp/selfhost-adapters."""
    host: str = "0.0.0.0"
    port: int = 8080
    engine_port: int = 0
    """Port of the engine on 127.0.0.1; 0 picks a free one."""
    engine_url: str = ""
    """Only with engine=external: the engine's base URL, e.g. http://127.0.0.1:8000."""
    engine_args: str = ""
    """Extra arguments for the engine command line, shell-quoted (e.g. `--max-model-len 4096`)."""
    engine_stream_usage: bool | None = None
    """Whether the engine reports token usage on streams when asked (`stream_options.include_usage`).
    Default: known per engine (vLLM yes, llama-cpp-python no); set it for an external engine that does."""
    engine_python: str = ""
    """Python that runs the engine (default: this one). The vLLM image keeps vLLM in its own environment."""
    engine_startup_timeout_seconds: float = 1800.0
    """How long a start may take before the engine is restarted (a 70B model loads for many minutes)."""
    engine_timeout_seconds: float = 300.0
    """Longest wait for a whole non-streamed answer, or for the next piece of a stream: then 504. An engine that
    neither answers its health check nor sends anything for this long is stuck, and is restarted."""
    engine_stall_seconds: float = 12.0
    """An engine that neither answers its health check (asked every 2 s) nor sends a byte for this long is
    frozen (a hung driver, a deadlock), not busy: `/ping`, `/health` and readiness answer 503, requests waiting
    on it and new ones get 503 with Retry-After, until it answers again. It is restarted only after
    `engine_timeout_seconds`. A busy engine answers its health check at once, so it is never taken for one."""
    max_engine_connections: int = 256
    """Engine requests open at once, over all callers; more wait their turn (a Vertex or TGI request fans out
    into one engine call per instance)."""
    api_keys_file: str = ""
    """File of API keys for the OpenAI routes, one `key-id:secret` per line. Unset: no key needed."""
    max_body_bytes: int = 1_048_576
    body_timeout_seconds: float = 30.0
    """Longest time a client may take to send a request body: then 408. No request slot is held meanwhile."""
    max_header_bytes: int = 32_768
    """Request line and headers together; more is a 431."""
    max_headers: int = 100
    """Header fields in one request; more is a 431."""
    header_timeout_seconds: float = 20.0
    """Longest time from a request's first byte to the end of its headers: then 408 and the connection closes."""
    max_tokens_cap: int = 4096
    """Largest `max_tokens` a request may ask for (more is a 422); also the default when it asks for none."""
    max_concurrency_per_key: int = 256
    """Requests one API key may have in flight at once; one more is a 429. Requests without a key (SageMaker,
    Vertex) share one budget. 256 is vLLM's default batch (max_num_seqs): more would only queue in the engine."""
    tls_cert_file: str = ""
    """PEM certificate (chain) to serve HTTPS with, TLS 1.2 at least; with `tls_key_file`. Unset: plain HTTP."""
    tls_key_file: str = ""
    """PEM private key of `tls_cert_file`."""
    hf_token_keyvault_url: str = ""
    """A Key Vault secret holding the Hugging Face token, `https://<vault>.vault.azure.net/secrets/<name>[/<version>]`,
    read at start with Azure ML's managed identity into a private file HF_TOKEN_PATH names (azure_identity.py)."""
    log_prompts: bool = False
    """Write prompt text to the access log (off: only counts and ids are logged)."""
    drain_seconds: float = 25.0
    """On SIGTERM, how long in-flight requests may finish (SageMaker kills after 30 s)."""
    health_route: str = "/health"
    predict_route: str = "/predict"

    def resolved_model(self) -> str:
        return self.model or os.environ.get("HF_MODEL_ID", "") or "/opt/ml/model"

    def served_names(self) -> tuple[str, ...]:
        """The names a request's `model` may have: the served name first, then the aliases."""
        name = self.resolved_model_name()
        return (name, *(alias for alias in self.model_aliases if alias != name))

    def resolved_adapters_dir(self) -> Path:
        if self.adapters_dir:
            return Path(self.adapters_dir)
        hf_home = os.environ.get("HF_HOME")
        return Path(hf_home) / "selfhost-adapters" if hf_home else Path("/tmp/selfhost-adapters")

    def resolved_model_name(self) -> str:
        if self.model_name:
            return self.model_name
        model = self.resolved_model().rstrip("/")
        # A Hugging Face id ("org/name") is its own name; a local file or folder goes by its base name.
        if Path(model).exists() or model.endswith(".gguf"):
            return Path(model).name.removesuffix(".gguf")
        return model


@dataclass(frozen=True)
class Knob:
    attr: str
    envs: tuple[str, ...]
    parse: Callable[[str], Any]
    help: str = ""
    choices: tuple[str, ...] | None = None


PLATFORMS = ("serve", "sagemaker", "vertex", "openai", "all")
ENGINES = ("vllm", "llamacpp", "external")

# The first environment variable set wins; platform variables come after ours so ours can override them.
KNOBS: tuple[Knob, ...] = (
    Knob("engine", ("SELFHOST_ENGINE",), str, "inference engine", ENGINES),
    Knob("model", ("SELFHOST_MODEL",), str, "model path or Hugging Face id"),
    Knob("model_name", ("SELFHOST_MODEL_NAME",), str, "served model name"),
    Knob("model_aliases", ("SELFHOST_MODEL_ALIASES",), _names, "other accepted model names, comma-separated"),
    Knob("adapters", ("SELFHOST_ADAPTERS",), _adapters,
         "LoRA adapters, name=source comma-separated (source: a path or hf://owner/repo@commit[/file.gguf])"),
    Knob("adapters_dir", ("SELFHOST_ADAPTERS_DIR",), str, "download folder of hf:// adapters"),
    Knob("host", ("SELFHOST_HOST",), str, "listen address"),
    Knob("port", ("SELFHOST_PORT", "AIP_HTTP_PORT", "SAGEMAKER_BIND_TO_PORT"), int, "listen port"),
    Knob("engine_port", ("SELFHOST_ENGINE_PORT",), int, "engine port on 127.0.0.1 (0: any free)"),
    Knob("engine_url", ("SELFHOST_ENGINE_URL",), str, "engine URL when --engine external"),
    Knob("engine_args", ("SELFHOST_ENGINE_ARGS",), str, "extra engine arguments, shell-quoted"),
    Knob("engine_python", ("SELFHOST_ENGINE_PYTHON",), str, "python that runs the engine"),
    Knob("engine_stream_usage", ("SELFHOST_ENGINE_STREAM_USAGE",), _bool,
         "engine reports usage on streams (default: per engine)"),
    Knob("engine_startup_timeout_seconds", ("SELFHOST_ENGINE_STARTUP_TIMEOUT_SECONDS",), float,
         "longest engine start"),
    Knob("engine_timeout_seconds", ("SELFHOST_ENGINE_TIMEOUT_SECONDS",), float, "engine answer timeout (504)"),
    Knob("engine_stall_seconds", ("SELFHOST_ENGINE_STALL_SECONDS",), float,
         "engine silent this long is out of rotation (503)"),
    Knob("max_engine_connections", ("SELFHOST_MAX_ENGINE_CONNECTIONS",), int, "engine requests open at once"),
    Knob("api_keys_file", ("SELFHOST_API_KEYS_FILE",), str, "file of key-id:secret lines"),
    Knob("max_body_bytes", ("SELFHOST_MAX_BODY_BYTES",), int, "request body limit (413)"),
    Knob("body_timeout_seconds", ("SELFHOST_BODY_TIMEOUT_SECONDS",), float, "time to send a body (408)"),
    Knob("max_header_bytes", ("SELFHOST_MAX_HEADER_BYTES",), int, "request line and headers limit (431)"),
    Knob("max_headers", ("SELFHOST_MAX_HEADERS",), int, "header fields limit (431)"),
    Knob("header_timeout_seconds", ("SELFHOST_HEADER_TIMEOUT_SECONDS",), float, "time to send headers (408)"),
    Knob("max_tokens_cap", ("SELFHOST_MAX_TOKENS_CAP",), int, "max_tokens cap (422 above it)"),
    Knob("max_concurrency_per_key", ("SELFHOST_MAX_CONCURRENCY_PER_KEY",), int, "in-flight limit per key (429)"),
    Knob("tls_cert_file", ("SELFHOST_TLS_CERT_FILE",), str, "serve HTTPS with this PEM certificate"),
    Knob("tls_key_file", ("SELFHOST_TLS_KEY_FILE",), str, "PEM private key of --tls-cert-file"),
    Knob("hf_token_keyvault_url", ("SELFHOST_HF_TOKEN_KEYVAULT_URL",), str,
         "Key Vault secret URL of the Hugging Face token, read with Azure ML's managed identity"),
    Knob("log_prompts", ("SELFHOST_LOG_PROMPTS",), _bool, "log prompt text"),
    Knob("drain_seconds", ("SELFHOST_DRAIN_SECONDS",), float, "graceful drain on SIGTERM"),
    Knob("health_route", ("AIP_HEALTH_ROUTE",), str, "Vertex health route"),
    Knob("predict_route", ("AIP_PREDICT_ROUTE",), str, "Vertex predict route"),
)


def gguf_file(model: str) -> Path | None:
    """The file llama.cpp loads: the path itself, or the first .gguf in a folder (SageMaker unpacks model
    artifacts into /opt/ml/model; of a split model, the first part, which names the others)."""
    path = Path(model)
    if path.is_file():
        return path
    found = sorted(path.glob("*.gguf")) if path.is_dir() else []
    return found[0] if found else None


class SettingsError(ValueError):
    pass


def parse_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Flags, then the environment, then defaults. Raises SettingsError listing every bad value at once."""
    environ = os.environ if environ is None else environ
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="selfhost-adapter",
        description="Run an inference engine behind the SageMaker, Vertex AI and OpenAI contracts.")
    parser.add_argument("platform", nargs="?", choices=PLATFORMS, default=None,
                        help="contracts to serve; SageMaker starts containers with `serve` (default)")
    for knob in KNOBS:
        parser.add_argument("--" + knob.attr.replace("_", "-"), dest=knob.attr, default=None,
                            choices=knob.choices, help=f"{knob.help} (env {', '.join(knob.envs)})")
    args = parser.parse_args(list(argv) if argv is not None else None)

    values: dict[str, Any] = {"platform": args.platform or environ.get("SELFHOST_PLATFORM") or defaults.platform}
    problems: list[str] = []
    for knob in KNOBS:
        raw = getattr(args, knob.attr)
        source = "--" + knob.attr.replace("_", "-")
        if raw is None:
            source, raw = next(((env, environ[env]) for env in knob.envs if environ.get(env)), (source, None))
        if raw is None:
            continue
        try:
            values[knob.attr] = knob.parse(raw)
        except ValueError:
            problems.append(f"{source}: {raw!r} is not a valid {knob.parse.__name__.strip('_')}")
            continue
        if knob.choices and values[knob.attr] not in knob.choices:
            problems.append(f"{source}: {raw!r}; allowed: {', '.join(knob.choices)}")
    settings = Settings(**values)
    problems += _check(settings)
    problems += keyvault_problems(settings.hf_token_keyvault_url, environ)
    if problems:
        raise SettingsError("invalid adapter settings:\n  - " + "\n  - ".join(problems))
    return settings


def _check(s: Settings) -> list[str]:
    positive = ("max_body_bytes", "max_tokens_cap", "max_concurrency_per_key", "engine_timeout_seconds",
                "engine_startup_timeout_seconds", "max_engine_connections", "body_timeout_seconds",
                "max_header_bytes", "max_headers", "header_timeout_seconds", "engine_stall_seconds")
    problems = [f"{name}: must be positive, got {getattr(s, name)}" for name in positive if getattr(s, name) <= 0]
    problems += [f"{name}: must be a path starting with '/', got {getattr(s, name)!r}"
                 for name in ("health_route", "predict_route") if not getattr(s, name).startswith("/")]
    if s.platform not in PLATFORMS:
        problems.append(f"platform: {s.platform!r}; allowed: {', '.join(PLATFORMS)}")
    if s.engine == "external" and not s.engine_url:
        problems.append("engine external needs --engine-url (SELFHOST_ENGINE_URL)")
    if s.engine == "llamacpp" and gguf_file(s.resolved_model()) is None:
        problems.append(f"model: {s.resolved_model()!r} is neither a .gguf file nor a folder holding one")
    problems += _check_adapters(s)
    if s.api_keys_file and not Path(s.api_keys_file).is_file():
        problems.append(f"api_keys_file: {s.api_keys_file!r} is not a file")
    if bool(s.tls_cert_file) != bool(s.tls_key_file):
        problems.append("tls_cert_file and tls_key_file: give both or neither")
    tls_files = [f"{name}: {getattr(s, name)!r} is not a file" for name in ("tls_cert_file", "tls_key_file")
                 if getattr(s, name) and not Path(getattr(s, name)).is_file()]
    problems += tls_files
    if s.tls_cert_file and s.tls_key_file and not tls_files:
        try:
            tls_context(s)
        except (ssl.SSLError, OSError) as exc:
            problems.append(f"tls_cert_file, tls_key_file: not a certificate and its key: {exc}")
    return problems


def _check_adapters(s: Settings) -> list[str]:
    problems: list[str] = []
    served = s.served_names()
    seen: set[str] = set()
    for lora in s.adapters:
        name, source = lora.name, lora.source
        if not source:
            problems.append(f"adapters: {name!r} has no source; write name=source")
            continue
        if not LORA_NAME.fullmatch(name):
            problems.append(f"adapters: name {name!r} is not allowed; allowed: {LORA_NAME_RULE}")
        elif name in served:
            problems.append(f"adapters: name {name!r} is the served model's name or an alias: requests for it "
                            "would be ambiguous; choose another")
        elif name in seen:
            problems.append(f"adapters: name {name!r} is given twice")
        seen.add(name)
        if s.engine != "external":  # an external engine has its adapters where it runs
            problems += [f"adapters: {name}: {problem}" for problem in _source_problems(s.engine, source)]
    return problems


def _source_problems(engine: str, source: str) -> list[str]:
    try:
        hub = hub_source(source)
    except ValueError:
        return [f"{source!r} is not a Hub source; allowed: {HUB_FORMS}"]
    if hub is not None:
        if engine == "llamacpp" and hub.file is None:
            return [f"{source!r} names a folder; llama.cpp loads one .gguf LoRA file: hf://owner/repo@<commit>/"
                    "file.gguf"]
        if engine == "vllm" and hub.file is not None:
            return [f"{source!r} names one file; vLLM loads a PEFT folder: hf://owner/repo@<commit>"]
        return []
    path = Path(source)
    if engine == "llamacpp" and not path.is_file():
        return [f"{source!r} is not a file (llama.cpp loads one .gguf LoRA file)"]
    if engine == "vllm" and not all((path / file).is_file() for file in PEFT_FILES):
        return [f"{source!r} is not a PEFT folder (with {' and '.join(PEFT_FILES)})"]
    return []


def tls_context(s: Settings) -> ssl.SSLContext:
    """The server's TLS context: TLS 1.2 at least, the certificate chain and key of the settings."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(s.tls_cert_file, s.tls_key_file)
    return context
