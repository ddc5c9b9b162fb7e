"""The pay-per-token API prices: the snapshot against LiteLLM's price map in the installed package, the names a
stack can compare with, and `selfhost prices refresh --api-prices`."""

import datetime
import functools
import hashlib
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.catalog import api_prices
from components.catalog.api_prices import (
    DEFAULT_COMPARE_WITH,
    SNAPSHOT,
    SourceFile,
    api_names,
    api_price,
    build_snapshot,
    dump_snapshot,
    suggest,
    unknown_api_message,
)
from selfhost.prices import app

ROOT = Path(__file__).resolve().parents[1]
TODAY = datetime.date(2026, 12, 2)

# A recorded excerpt of LiteLLM's price map, with the entries the snapshot must leave out.
RECORDED = {
    "sample_spec": {"litellm_provider": "one of https://docs.litellm.ai/docs/providers", "mode": "chat",
                    "input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
    "gpt-4.1-nano": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-07,
                     "output_cost_per_token": 4e-07, "max_input_tokens": 1047576, "supports_vision": True},
    "gemini/gemini-2.5-flash": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 3e-07,
                                "output_cost_per_token": 2.5e-06, "cache_read_input_token_cost": 3e-08},
    "o3-pro": {"litellm_provider": "openai", "mode": "responses", "input_cost_per_token": 2e-05,
               "output_cost_per_token": 8e-05},
    "babbage-002": {"litellm_provider": "text-completion-openai", "mode": "completion",
                    "input_cost_per_token": 4e-07, "output_cost_per_token": 4e-07},
    "free-input": {"litellm_provider": "x", "mode": "chat", "input_cost_per_token": 0, "output_cost_per_token": 1e-06},
    # Left out: not a chat/completion/responses model, free, unpriced, prices that are not numbers.
    "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": 2e-08,
                               "output_cost_per_token": 0.0},
    "free-model": {"litellm_provider": "x", "mode": "chat", "input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
    "no-output-price": {"litellm_provider": "x", "mode": "chat", "input_cost_per_token": 1e-06},
    "string-price": {"litellm_provider": "x", "mode": "chat", "input_cost_per_token": "1e-06",
                     "output_cost_per_token": 1e-06},
    "bool-price": {"litellm_provider": "x", "mode": "chat", "input_cost_per_token": True,
                   "output_cost_per_token": 1e-06},
    "no-mode": {"litellm_provider": "x", "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
}
KEPT = ["babbage-002", "free-input", "gemini/gemini-2.5-flash", "gpt-4.1-nano", "o3-pro"]


def installed() -> Path:
    path = api_prices.installed_package_file()
    if path is None:
        pytest.fail(f"LiteLLM's price map is not installed in {api_prices.TOOL_ENV}: run `make litellm` "
                    "(`make test` does it before pytest)")
    return path


# ---------------------------------------------------------------- the committed snapshot against the package


def test_snapshot_is_the_installed_packages_price_map():
    source = installed()
    raw = source.read_bytes()
    package = json.loads(raw)
    snap = json.loads(SNAPSHOT.read_text())
    meta = snap["meta"]
    assert meta["sha256"] == hashlib.sha256(raw).hexdigest(), (
        f"the snapshot was not made from {source}: run `selfhost prices refresh --api-prices default`")
    assert meta["litellm_version"] == api_prices.package_version(source)
    assert meta["file"] == "model_prices_and_context_window_backup.json"
    assert meta["source"] == f"litellm {meta['litellm_version']} package, litellm/{meta['file']}"
    assert meta["upstream"] == api_prices.UPSTREAM_URL
    datetime.date.fromisoformat(meta["generated"])
    # Every chat (completion, responses) model with two numeric prices, exactly as the package gives them.
    expected = {
        key: {"litellm_provider": e["litellm_provider"], "mode": e["mode"],
              "input_cost_per_token": e["input_cost_per_token"], "output_cost_per_token": e["output_cost_per_token"]}
        for key, e in package.items()
        if key != "sample_spec" and e.get("mode") in ("chat", "completion", "responses")
        and all(type(e.get(c)) in (int, float) for c in ("input_cost_per_token", "output_cost_per_token"))
        and (e["input_cost_per_token"] > 0 or e["output_cost_per_token"] > 0)
    }
    assert snap["models"] == expected
    assert meta["models"] == len(expected) > 2000
    chat = [k for k, e in package.items() if k != "sample_spec" and e.get("mode") == "chat"]
    assert sum(1 for k in chat if k in snap["models"]) > 0.9 * len(chat)


def test_snapshot_file_is_sorted_one_model_a_line():
    text = SNAPSHOT.read_text()
    snap = json.loads(text)
    assert dump_snapshot(snap) == text
    assert list(snap["models"]) == sorted(snap["models"])
    assert '    "gpt-4.1-nano": {"input_cost_per_token": 1e-07, "litellm_provider": "openai", "mode": "chat", ' \
           '"output_cost_per_token": 4e-07},\n' in text


# ---------------------------------------------------------------- the names a stack can compare with


@pytest.mark.parametrize(("name", "provider", "model", "per_1m"), [
    ("gpt-4.1-nano", "OpenAI", "gpt-4.1-nano", (0.1, 0.4)),
    ("gpt-5-nano", "OpenAI", "gpt-5-nano", (0.05, 0.4)),
    ("gemini/gemini-2.5-flash", "Google", "gemini-2.5-flash", (0.3, 2.5)),
    ("claude-haiku-4-5", "Anthropic", "claude-haiku-4-5", (1.0, 5.0)),
])
def test_the_defaults_are_current_small_models(name, provider, model, per_1m):
    assert name in DEFAULT_COMPARE_WITH
    price = api_price(name)
    assert price is not None
    assert (price.provider, price.model, (price.usd_per_1m_input, price.usd_per_1m_output)) == (provider, model, per_1m)
    meta = api_prices.snapshot()["meta"]
    version = meta["litellm_version"]
    assert price.source == f"LiteLLM model_prices_and_context_window_backup.json (litellm {version}), key {name}"
    assert price.as_of == meta["generated"]
    assert price.request_usd(500, 200) == pytest.approx((500 * per_1m[0] + 200 * per_1m[1]) / 1e6)


def test_every_name_has_a_price_and_a_provider():
    names = api_names()
    assert set(DEFAULT_COMPARE_WITH) <= set(names) and "sample_spec" not in names
    for name in names:
        price = api_price(name)
        assert price is not None
        assert price.usd_per_1m_input >= 0 and price.usd_per_1m_output >= 0
        assert price.usd_per_1m_input + price.usd_per_1m_output > 0
        assert price.provider and price.model
    vertex = api_price("vertex_ai/claude-haiku-4-5")
    assert vertex is not None and (vertex.provider, vertex.model) == ("Google Vertex AI", "claude-haiku-4-5")
    together = api_price("together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo")
    assert together is not None
    assert (together.provider, together.model) == ("Together AI", "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo")
    assert api_prices.provider_name("some-new-provider") == "some-new-provider"


def test_the_2025_names_still_read_back():
    """Stacks deployed with the hand-kept table export its names in costInputs.usage.compareWith."""
    assert api_price("gpt-4o-mini") is not None
    for old, key in api_prices.ALIASES.items():
        assert old not in api_names() and key in api_names()
        price, new = api_price(old), api_price(key)
        assert price == new and price is not None and price.source.endswith(f", key {key}")
    mistral = api_price("open-mistral-7b")
    assert mistral is not None
    assert (mistral.provider, mistral.model, mistral.usd_per_1m_input, mistral.usd_per_1m_output) == (
        "Mistral AI", "open-mistral-7b", 0.25, 0.25)


def test_unknown_names_get_suggestions():
    assert api_price("gpt4o") is None
    assert suggest("gpt4o")[0] == "gpt-4o"
    # The same model under a provider prefix, or with its date: the provider's own key comes first.
    assert suggest("claude-3-opus")[0] == "claude-3-opus-20240229"
    assert suggest("open-mixtral-8x7b")[0] == "mistral/open-mixtral-8x7b"
    assert suggest("GPT-4.1-NANO")[0] == "gpt-4.1-nano"
    assert suggest("zzzzzzzz-qqqq") == []
    message = unknown_api_message("gpt4o")
    assert message.startswith("unknown API 'gpt4o'; did you mean gpt-4o or ")
    assert f"Any model of LiteLLM's price map ({len(api_names())} models" in message
    assert unknown_api_message("zzzzzzzz-qqqq").startswith("unknown API 'zzzzzzzz-qqqq'. Any model")


def test_importing_the_module_reads_no_snapshot():
    code = ("import sys, components.catalog.api_prices as a; "
            "assert a.snapshot.cache_info().currsize == 0; assert 'urllib.request' not in sys.modules; "
            "assert a.api_price('gpt-5-nano') is not None; assert a.snapshot.cache_info().currsize == 1")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ---------------------------------------------------------------- regenerating it


def source_file(raw: bytes, name: str = "prices.json") -> SourceFile:
    return SourceFile(raw, name, name, None)


def test_build_snapshot_keeps_the_priced_models_as_given():
    raw = json.dumps(RECORDED).encode()
    snap = build_snapshot(json.loads(raw), SourceFile(raw, "x.json", "litellm 9.9 package, litellm/x.json", "9.9"),
                          TODAY)
    assert snap["meta"] == {
        "file": "x.json", "generated": "2026-12-02", "litellm_version": "9.9", "models": len(KEPT),
        "modes": ["chat", "completion", "responses"], "sha256": hashlib.sha256(raw).hexdigest(),
        "source": "litellm 9.9 package, litellm/x.json", "upstream": api_prices.UPSTREAM_URL,
    }
    assert list(snap["models"]) == KEPT
    assert snap["models"]["gpt-4.1-nano"] == {"input_cost_per_token": 1e-07, "litellm_provider": "openai",
                                             "mode": "chat", "output_cost_per_token": 4e-07}
    assert snap["models"]["o3-pro"]["mode"] == "responses"
    assert type(snap["models"]["free-input"]["input_cost_per_token"]) is int  # as given, 0 stays 0
    text = dump_snapshot(snap)
    assert json.loads(text) == snap
    lines = text.splitlines()
    assert lines[-4:] == [
        '    "gpt-4.1-nano": {"input_cost_per_token": 1e-07, "litellm_provider": "openai", "mode": "chat", '
        '"output_cost_per_token": 4e-07},',
        '    "o3-pro": {"input_cost_per_token": 2e-05, "litellm_provider": "openai", "mode": "responses", '
        '"output_cost_per_token": 8e-05}',
        "  }", "}"]


def test_read_source_default_is_the_installed_package(tmp_path: Path):
    source = installed()
    read = api_prices.read_source("default")
    assert read.raw == source.read_bytes() and read.litellm_version == api_prices.package_version(source)
    assert read.source == f"litellm {read.litellm_version} package, litellm/model_prices_and_context_window_backup.json"
    assert api_prices.installed_package_file(tmp_path) is None  # without it: the upstream URL (no network here)


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"GCP_BILLING_API_KEY": ""})


def test_refresh_command_with_a_path_writes_only_the_snapshot(tmp_path: Path):
    recorded = tmp_path / "model_prices_and_context_window.json"
    recorded.write_text(json.dumps(RECORDED))
    out = tmp_path / "snap" / "api_prices.json"
    result = run("refresh", "--api-prices", str(recorded), "--api-prices-out", str(out), "--out", str(tmp_path / "c"))
    assert result.exit_code == 0, result.output
    snap = json.loads(out.read_text())
    assert list(snap["models"]) == KEPT
    assert snap["meta"]["source"] == "model_prices_and_context_window.json" and snap["meta"]["litellm_version"] is None
    assert snap["meta"]["generated"] == datetime.date.today().isoformat()
    assert f"{len(KEPT)} API models" in result.stdout
    assert not (tmp_path / "c").exists()  # the AWS/GCP refresh did not run
    assert api_prices.snapshot(out)["models"] == snap["models"]


def test_refresh_command_with_cloud_options_refreshes_both(tmp_path: Path):
    recorded = tmp_path / "prices.json"
    recorded.write_text(json.dumps(RECORDED))
    out = tmp_path / "api_prices.json"
    aws = ROOT / "tests" / "data" / "pricing" / "aws"
    result = run("refresh", "--api-prices", str(recorded), "--api-prices-out", str(out),
                 "--aws-offers", str(aws), "--regions", "us-east-1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert out.is_file() and (tmp_path / "aws.csv").is_file()


def test_refresh_command_from_a_url(tmp_path: Path):
    (tmp_path / "model_prices_and_context_window.json").write_text(json.dumps(RECORDED))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model_prices_and_context_window.json"
        out = tmp_path / "api_prices.json"
        result = run("refresh", "--api-prices", url, "--api-prices-out", str(out))
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    meta = json.loads(out.read_text())["meta"]
    assert (meta["source"], meta["file"]) == (url, "model_prices_and_context_window.json")


@pytest.mark.parametrize("content", [None, "[1, 2]", '{"sample_spec": {}}', "not json"])
def test_refresh_command_rejects_a_bad_source(tmp_path: Path, content):
    source = tmp_path / "prices.json"
    if content is not None:
        source.write_text(content)
    out = tmp_path / "api_prices.json"
    result = run("refresh", "--api-prices", str(source), "--api-prices-out", str(out))
    assert result.exit_code == 1
    assert "API prices not refreshed" in result.stderr
    assert not out.exists()


def test_apis_command_lists_names_and_prices():
    result = run("apis", "gpt-5-nano")
    assert result.exit_code == 0, result.output
    assert "gpt-5-nano (default)" in result.stdout and "0.05" in result.stdout
    result = run("apis", "gpt4o")
    assert result.exit_code == 1 and "did you mean gpt-4o" in result.stderr
