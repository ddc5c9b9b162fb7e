"""Pay-per-token API prices, to answer "should we self-host?" against real alternatives.

The prices are LiteLLM's price map (github.com/BerriAI/litellm): `model_prices_and_context_window_backup.json`,
the copy shipped inside the `litellm` package, which gives `input_cost_per_token` and `output_cost_per_token` in
$ per token for every model it knows. `data/api_prices.json` is a dated snapshot of it: every entry of mode
chat, completion or responses with both prices numeric (and one of them above 0), with its key,
`litellm_provider`, mode and the two prices exactly as LiteLLM gives them. Any of its keys can be named in a
stack's `usage.compareWith` (`DEFAULT_COMPARE_WITH` when it names none).

`selfhost prices refresh --api-prices SOURCE` regenerates the snapshot (`build_snapshot`, `write_snapshot`)
from the package installed by `make litellm` (in .tools/litellm: the project's environment cannot import
litellm), from another copy of the file, or from the maintained upstream file (`UPSTREAM_URL`);
tests/test_api_prices.py checks it against the package. The snapshot is read on first use, not at import.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).parent / "data" / "api_prices.json"
UPSTREAM_URL = "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
PACKAGE_FILE = "model_prices_and_context_window_backup.json"
ROOT = Path(__file__).resolve().parents[2]
TOOL_ENV = ROOT / ".tools" / "litellm"
MODES = ("chat", "completion", "responses")
DOC_KEY = "sample_spec"  # LiteLLM's documentation of the fields, not a model

# Current small models, one per large provider, all in the price map: what a stack compares with unless it
# names its own. Gemini is Google's Gemini API (`gemini/`, AI Studio keys); the bare `gemini-2.5-flash` is the
# same model on Vertex AI (LiteLLM provider vertex_ai-language-models), at the same list price today.
DEFAULT_COMPARE_WITH: tuple[str, ...] = ("gpt-4.1-nano", "gpt-5-nano", "gemini/gemini-2.5-flash", "claude-haiku-4-5")

# The names of the hand-kept table this snapshot replaced (the 2025 defaults), which LiteLLM spells otherwise:
# stacks deployed before export them in `costInputs.usage.compareWith`, and `selfhost cost` reads them back.
# gpt-4o-mini, the fourth, is a key of the map. Not listed by `api_names`.
ALIASES: dict[str, str] = {
    "claude-3-haiku": "claude-3-haiku-20240307",
    "open-mistral-7b": "mistral/open-mistral-7b",
    "together-llama-3.1-8b": "together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
}

# LiteLLM's provider ids, as people name the companies. A provider not listed shows as LiteLLM's id.
PROVIDER_NAMES: dict[str, str] = {
    "openai": "OpenAI", "text-completion-openai": "OpenAI", "anthropic": "Anthropic",
    "gemini": "Google", "palm": "Google", "vertex_ai": "Google Vertex AI",
    "mistral": "Mistral AI", "together_ai": "Together AI", "fireworks_ai": "Fireworks AI",
    "bedrock": "Amazon Bedrock", "bedrock_converse": "Amazon Bedrock", "bedrock_mantle": "Amazon Bedrock",
    "amazon_nova": "Amazon Nova", "azure": "Azure OpenAI", "azure_text": "Azure OpenAI", "azure_ai": "Azure AI Foundry",
    "openrouter": "OpenRouter", "vercel_ai_gateway": "Vercel AI Gateway", "groq": "Groq", "cerebras": "Cerebras",
    "deepseek": "DeepSeek", "xai": "xAI", "cohere": "Cohere", "cohere_chat": "Cohere", "deepinfra": "DeepInfra",
    "perplexity": "Perplexity", "databricks": "Databricks", "replicate": "Replicate", "novita": "Novita AI",
    "ai21": "AI21 Labs", "sambanova": "SambaNova", "moonshot": "Moonshot AI", "dashscope": "Alibaba Cloud",
    "watsonx": "IBM watsonx", "oci": "Oracle Cloud", "nebius": "Nebius", "cloudflare": "Cloudflare Workers AI",
    "lambda_ai": "Lambda", "snowflake": "Snowflake", "hyperbolic": "Hyperbolic", "baseten": "Baseten",
    "anyscale": "Anyscale", "scaleway": "Scaleway", "ovhcloud": "OVHcloud", "nscale": "Nscale", "minimax": "MiniMax",
    "zai": "Z.ai", "friendliai": "FriendliAI", "meta": "Meta",
}


def provider_name(litellm_provider: str) -> str:
    """A readable name for a LiteLLM provider id: `vertex_ai-anthropic_models` is Google Vertex AI."""
    if litellm_provider in PROVIDER_NAMES:
        return PROVIDER_NAMES[litellm_provider]
    if litellm_provider.startswith("vertex_ai"):
        return PROVIDER_NAMES["vertex_ai"]
    return litellm_provider


def model_name(key: str, litellm_provider: str) -> str:
    """The model's name without LiteLLM's routing prefix: `gemini/gemini-2.5-flash` is gemini-2.5-flash,
    `vertex_ai/claude-...` (provider vertex_ai-anthropic_models) claude-...; a key without one stays whole."""
    head, sep, rest = key.partition("/")
    if sep and rest and litellm_provider.replace("-", "_").startswith(head.replace("-", "_")):
        return rest
    return key


@dataclass(frozen=True)
class ApiPrice:
    provider: str
    model: str
    usd_per_1m_input: float
    usd_per_1m_output: float
    source: str
    as_of: str

    def request_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.usd_per_1m_input + output_tokens * self.usd_per_1m_output) / 1e6


# ---------------------------------------------------------------- the snapshot, read on first use


@cache
def snapshot(path: Path = SNAPSHOT) -> dict[str, Any]:
    """The snapshot file: {"meta": {...}, "models": {key: {litellm_provider, mode, input_cost_per_token,
    output_cost_per_token}}}."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def source_label(meta: Mapping[str, Any]) -> str:
    """Where the snapshot's numbers come from, as each price's `source` starts."""
    where = f"litellm {meta['litellm_version']}" if meta.get("litellm_version") else meta["source"]
    return f"LiteLLM {meta['file']} ({where})"


def api_names() -> list[str]:
    """Every name `usage.compareWith` accepts, sorted."""
    return sorted(snapshot()["models"])


@cache
def api_price(name: str) -> ApiPrice | None:
    """The price of one key of the price map (or of an old name in `ALIASES`), None when it has no such model."""
    data = snapshot()
    key = ALIASES.get(name, name)
    entry = data["models"].get(key)
    if entry is None:
        return None
    meta = data["meta"]
    provider = entry["litellm_provider"]
    return ApiPrice(
        provider=provider_name(provider),
        model=model_name(key, provider),
        usd_per_1m_input=per_million(entry["input_cost_per_token"]),
        usd_per_1m_output=per_million(entry["output_cost_per_token"]),
        source=f"{source_label(meta)}, key {key}",
        as_of=meta["generated"],
    )


def per_million(usd_per_token: float) -> float:
    """$ per token as $ per 1M tokens, without the float noise of a bare x 1e6 (3e-07 -> 0.3, not
    0.30000000000000004): LiteLLM's values are decimal figures, so 12 significant digits keep them exact."""
    return float(f"{usd_per_token * 1e6:.12g}")


def suggest(name: str, limit: int = 3) -> list[str]:
    """Names of the price map close to `name`: the same model under a provider prefix
    (open-mistral-7b -> mistral/open-mistral-7b), names that extend it (claude-3-haiku -> claude-3-haiku-20240307),
    then the closest spellings (gpt4o -> gpt-4o)."""
    import difflib  # on the error path only: importing this module stays cheap

    names = api_names()
    wanted = name.strip().lower()
    lowered = {n.lower(): n for n in names}
    found: list[str] = []

    def add(candidates: Iterable[str]) -> None:
        for c in candidates:
            if c not in found:
                found.append(c)

    # The same model routed through fewer gateways first: claude-3-haiku-20240307 (Anthropic's own) before
    # vertex_ai/claude-3-haiku before openrouter/anthropic/claude-3-haiku.
    add(sorted((n for n in names if n.lower() == wanted or n.lower().endswith("/" + wanted)
                or n.lower().startswith(wanted)), key=lambda n: (n.count("/"), len(n), n)))
    add(lowered[m] for m in difflib.get_close_matches(wanted, list(lowered), n=limit, cutoff=0.6))
    bare = {n.rsplit("/", 1)[-1].lower(): n for n in sorted(names, key=len, reverse=True)}
    add(bare[m] for m in difflib.get_close_matches(wanted, list(bare), n=limit, cutoff=0.6))
    return found[:limit]


def unknown_api_message(name: str) -> str:
    """unknown API 'gpt4o'; did you mean gpt-4o? Any model of LiteLLM's price map (N models) can be named ..."""
    close = suggest(name)
    hint = f"; did you mean {' or '.join(close)}?" if close else "."
    meta = snapshot()["meta"]
    return (f"unknown API {name!r}{hint} Any model of LiteLLM's price map ({len(snapshot()['models'])} models, "
            f"snapshot of {meta['generated']}) can be named: `selfhost prices apis PATTERN` lists them")


# ---------------------------------------------------------------- regenerating it


def installed_package_file(env: Path = TOOL_ENV) -> Path | None:
    """The price map inside the litellm package of the tool env `make litellm` installs, if it is there."""
    found = sorted(env.glob(f"lib/python3*/site-packages/litellm/{PACKAGE_FILE}"))
    return found[-1] if found else None


def package_version(json_file: Path) -> str | None:
    """The litellm version a price map file came with, when it sits in an installed package (site-packages/
    litellm/, beside litellm-X.Y.Z.dist-info)."""
    if json_file.parent.name != "litellm":
        return None
    for dist in sorted(json_file.parent.parent.glob("litellm-*.dist-info")):
        metadata = dist / "METADATA"
        if metadata.is_file():
            match = re.search(r"^Version: (\S+)$", metadata.read_text(errors="replace"), re.MULTILINE)
            if match:
                return match.group(1)
    return None


@dataclass(frozen=True)
class SourceFile:
    """A price map's bytes and where they were read: `source` is what the snapshot records (the URL, or the
    package and file name: never a path of this machine)."""

    raw: bytes
    file: str
    source: str
    litellm_version: str | None


def read_source(source: str | None = None, env: Path = TOOL_ENV) -> SourceFile:
    """A price map from `source`: an http(s) URL, a path to a LiteLLM JSON file, or None (or "default") for the
    tool env's package file when it is installed, else the upstream file."""
    if source in (None, "", "default"):
        installed = installed_package_file(env)
        source = str(installed) if installed else UPSTREAM_URL
    if re.match(r"https?://", source):
        import urllib.request  # only when refreshing from a URL: it costs 30 ms to import

        with urllib.request.urlopen(source, timeout=120) as response:
            raw = response.read()
        return SourceFile(raw, source.rsplit("/", 1)[-1], source, None)
    path = Path(source)
    version = package_version(path.resolve())
    label = f"litellm {version} package, litellm/{path.name}" if version else path.name
    return SourceFile(path.read_bytes(), path.name, label, version)


def priced(entry: Any) -> bool:
    """An entry the snapshot keeps: a chat/completion/responses model with both $ per token numeric, one above 0."""
    if not isinstance(entry, dict) or entry.get("mode") not in MODES:
        return False
    costs = [c for c in (entry.get("input_cost_per_token"), entry.get("output_cost_per_token"))
             if isinstance(c, int | float) and not isinstance(c, bool) and c >= 0]
    return len(costs) == 2 and any(c > 0 for c in costs) and isinstance(entry.get("litellm_provider"), str)


def build_snapshot(data: Mapping[str, Any], source: SourceFile, today: datetime.date) -> dict[str, Any]:
    """The snapshot of a parsed price map: its priced models (key, litellm_provider, mode, the two prices as
    given), and where and when they were read."""
    import hashlib

    models = {
        key: {field: entry[field]
              for field in ("input_cost_per_token", "litellm_provider", "mode", "output_cost_per_token")}
        for key, entry in sorted(data.items()) if key != DOC_KEY and priced(entry)
    }
    meta = {
        "file": source.file,
        "generated": today.isoformat(),
        "litellm_version": source.litellm_version,
        "models": len(models),
        "modes": list(MODES),
        "sha256": hashlib.sha256(source.raw).hexdigest(),
        "source": source.source,
        "upstream": UPSTREAM_URL,
    }
    return {"meta": meta, "models": models}


def dump_snapshot(snap: Mapping[str, Any]) -> str:
    """JSON with sorted keys, one model per line (diffs of a refresh show the prices that moved)."""
    meta = json.dumps(snap["meta"], sort_keys=True, indent=2).replace("\n", "\n  ")
    lines = ["{", f'  "meta": {meta},', '  "models": {']
    models = sorted(snap["models"].items())
    for i, (key, entry) in enumerate(models):
        comma = "," if i < len(models) - 1 else ""
        lines.append(f"    {json.dumps(key)}: {json.dumps(entry, sort_keys=True)}{comma}")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def write_snapshot(snap: Mapping[str, Any], path: Path = SNAPSHOT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_snapshot(snap))
    snapshot.cache_clear()
    api_price.cache_clear()


def refresh(source: str | None = None, path: Path = SNAPSHOT, today: datetime.date | None = None) -> dict[str, Any]:
    """Read a price map (see `read_source`), write its snapshot to `path`, return the snapshot."""
    read = read_source(source)
    data = json.loads(read.raw)
    if not isinstance(data, dict):
        raise ValueError(f"{read.source}: not a LiteLLM price map (a JSON object of models)")
    snap = build_snapshot(data, read, today or datetime.date.today())
    if not snap["models"]:
        raise ValueError(f"{read.source}: no priced chat model in it")
    write_snapshot(snap, path)
    return snap
