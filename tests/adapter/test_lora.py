"""LoRA adapters on one base model: settings, the engines' command lines, hf:// downloads, and end to end on the
real llama.cpp engine started by `selfhost serve`, asked through the OpenAI client."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from llama_cpp.server.model import LlamaProxy
from llama_cpp.server.settings import ModelSettings
from openai.types.chat import ChatCompletionMessageParam
from selfhost_adapter import contracts as c
from selfhost_adapter import fetch, llamacpp_lora
from selfhost_adapter.engines import ENGINES, fetch_adapters
from selfhost_adapter.errors import ApiError
from selfhost_adapter.llamacpp_lora import LoraProxy
from selfhost_adapter.settings import Lora, Settings, SettingsError, parse_settings
from typer.testing import CliRunner

from selfhost.cli import app
from selfhost.serve import LocalEngine, adapter_argv

from .conftest import KEYS, Running, auth, log_of, metric, start_adapter, stop_process
from .test_fetch import Hub, serve
from .tinymodel import Shape, write_tiny_lora

REPO = "acme/support-lora"
REV = "0123456789abcdef0123456789abcdef01234567"
PROMPT = "Where is my parcel?"


# -- settings ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lora_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_lora(tmp_path_factory.mktemp("lora") / "support.gguf", seed=1)


def test_adapters_are_read_from_the_flag_or_the_environment(tiny_model: Path, lora_file: Path) -> None:
    flag = parse_settings(["--engine", "llamacpp", "--model", str(tiny_model), "--adapters",
                           f"support={lora_file}, billing.v2=hf://{REPO}@{REV}/b.gguf"], environ={})
    assert flag.adapters == (Lora("support", str(lora_file)), Lora("billing.v2", f"hf://{REPO}@{REV}/b.gguf"))
    env = parse_settings(["--engine", "llamacpp", "--model", str(tiny_model)],
                         environ={"SELFHOST_ADAPTERS": f"support={lora_file}", "SELFHOST_ADAPTERS_DIR": "/cache"})
    assert env.adapters == (Lora("support", str(lora_file)),) and env.resolved_adapters_dir() == Path("/cache")


def test_the_adapters_dir_defaults_under_hf_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", "/data/hf")
    assert Settings().resolved_adapters_dir() == Path("/data/hf/selfhost-adapters")
    monkeypatch.delenv("HF_HOME")
    assert Settings().resolved_adapters_dir() == Path("/tmp/selfhost-adapters")


def test_every_bad_adapter_is_named_at_once(tiny_model: Path, lora_file: Path, tmp_path: Path) -> None:
    items = [f"good={lora_file}", "no-source", f"-dash={lora_file}", f"{'x' * 65}={lora_file}", f"tiny={lora_file}",
             f"gpt-4o-mini={lora_file}", f"good={lora_file}", f"gone={tmp_path / 'gone.gguf'}",
             f"folder=hf://{REPO}@{REV}", f"short=hf://{REPO}@abc123/a.gguf", f"climb=hf://{REPO}@{REV}/../a.gguf",
             f"nosha=hf://{REPO}@{REV}/a.gguf#sha256=xyz"]
    with pytest.raises(SettingsError) as caught:
        parse_settings(["--engine", "llamacpp", "--model", str(tiny_model), "--model-aliases", "gpt-4o-mini",
                        "--adapters", ",".join(items)], environ={})
    message = str(caught.value)
    for expected in ("'no-source' has no source; write name=source",
                     "name '-dash' is not allowed; allowed: 1 to 64 letters, digits",
                     f"name '{'x' * 65}' is not allowed",
                     "name 'tiny' is the served model's name or an alias",
                     "name 'gpt-4o-mini' is the served model's name or an alias",
                     "name 'good' is given twice",
                     f"gone: '{tmp_path / 'gone.gguf'}' is not a file (llama.cpp loads one .gguf LoRA file)",
                     "folder: 'hf://acme/support-lora@0123456789abcdef0123456789abcdef01234567' names a folder",
                     "short: 'hf://acme/support-lora@abc123/a.gguf' is not a Hub source; allowed: hf://owner/repo@",
                     "climb: ", "nosha: "):
        assert expected in message
    assert "Traceback" not in message and message.count("\n  - ") == len(items) - 1  # all but `good`


def test_vllm_takes_peft_folders(tmp_path: Path) -> None:
    peft = tmp_path / "peft"
    peft.mkdir()
    with pytest.raises(SettingsError) as caught:
        parse_settings(["--engine", "vllm", "--model", "org/base", "--adapters",
                        f"a={peft},b=hf://{REPO}@{REV}/one.gguf"], environ={})
    assert "a: " in str(caught.value) and "is not a PEFT folder (with adapter_config.json and " \
        "adapter_model.safetensors)" in str(caught.value)
    assert "b: 'hf://acme/support-lora@0123456789abcdef0123456789abcdef01234567/one.gguf' names one file; vLLM " \
        "loads a PEFT folder" in str(caught.value)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (peft / name).write_text("{}")
    settings = parse_settings(["--engine", "vllm", "--model", "org/base", "--adapters",
                               f"a={peft},b=hf://{REPO}@{REV}"], environ={})
    assert [lora.name for lora in settings.adapters] == ["a", "b"]


def test_an_external_engine_takes_any_source() -> None:
    settings = parse_settings(["--engine", "external", "--engine-url", "http://127.0.0.1:1", "--adapters",
                               "a=/on/the/engine/host"], environ={})
    assert settings.adapters == (Lora("a", "/on/the/engine/host"),)


# -- engine command lines ------------------------------------------------------------------------------------

def test_vllm_gets_every_adapter_after_one_lora_modules_flag() -> None:
    settings = Settings(engine="vllm", model="org/base", model_name="base",
                        adapters=(Lora("a", "/x"), Lora("b", "/y")))
    argv = ENGINES["vllm"].command(settings, "python", 8000)
    assert argv[argv.index("--enable-lora"):] == ["--enable-lora", "--lora-modules", "a=/x", "b=/y"]
    assert "--max-loras" not in argv and "--max-lora-rank" not in argv  # from the infrastructure's engine args
    assert "--enable-lora" not in ENGINES["vllm"].command(Settings(engine="vllm", model="org/base"), "python", 1)


def test_llamacpp_runs_our_entry_module_only_with_adapters(tiny_model: Path) -> None:
    plain = ENGINES["llamacpp"].command(Settings(model=str(tiny_model)), "python", 9000)
    assert plain[:3] == ["python", "-m", "llama_cpp.server"]
    settings = Settings(model=str(tiny_model), adapters=(Lora("a", "/a.gguf"), Lora("b", "/b.gguf")))
    argv = ENGINES["llamacpp"].command(settings, "python", 9000)
    assert argv[:7] == ["python", "-m", "selfhost_adapter.llamacpp_lora", "--lora_module", "a=/a.gguf",
                        "--lora_module", "b=/b.gguf"]
    assert argv[7:] == plain[3:]  # the server's own options, the same as without adapters


# -- the llama.cpp entry module ------------------------------------------------------------------------------

def test_the_llamacpp_proxy_selects_adapters_on_one_model(tiny_model: Path, lora_file: Path, tmp_path: Path) -> None:
    base = LlamaProxy(models=[ModelSettings(model=str(tiny_model), model_alias="tiny", verbose=False)])
    proxy = LoraProxy(base, {"support": str(lora_file)})
    try:
        llama = proxy("tiny")
        assert proxy.selected is None and list(proxy) == ["tiny", "support"]
        llama.eval(llama.tokenize(b"hello"))
        assert proxy("support") is llama and proxy.selected == "support"
        assert llama.n_tokens == 0  # what the base evaluated is not reused under the adapter
        assert proxy(None) is llama and proxy.selected is None
    finally:
        proxy.free()
    assert proxy.adapters == {}
    other = write_tiny_lora(tmp_path / "other.gguf", shape=Shape(n_embd=32, n_ff=64))
    with pytest.raises(RuntimeError, match=f"adapter wrong: llama.cpp cannot load {other} as a LoRA of this model"):
        LoraProxy(base, {"ok": str(lora_file), "wrong": str(other)})
    base.free()


def test_the_llamacpp_entry_refuses_the_prompt_cache(tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        llamacpp_lora.main(["--model", str(tiny_model), "--cache", "true", "--lora_module", "a=/a.gguf"])
    assert caught.value.code == 2 and "--cache cannot be used with adapters" in capsys.readouterr().err


# -- the request rules ---------------------------------------------------------------------------------------

def test_an_adapter_name_reaches_the_engine_as_it_is() -> None:
    rules = c.Rules(64, "tiny", frozenset({"gpt-4o-mini"}), ("support", "billing"))
    body = {"prompt": "x", "max_tokens": 4, "model": "support"}
    assert rules.check(body, c.COMPLETIONS) is False and body["model"] == "support"
    alias = {"prompt": "x", "max_tokens": 4, "model": "gpt-4o-mini"}
    assert rules.check(alias, c.COMPLETIONS) is True and alias["model"] == "tiny"
    with pytest.raises(ApiError) as caught:
        rules.check({"prompt": "x", "model": "nope"}, c.COMPLETIONS)
    assert caught.value.status == 404 and caught.value.code == "model_not_found"
    assert caught.value.message == "The model 'nope' does not exist: this server serves 'tiny' and its adapters " \
        "'support', 'billing'"
    calls = c.parse_vertex({"instances": ["a", {"prompt": "b", "model": "tiny"}],
                            "parameters": {"model": "billing", "max_tokens": 2}}, rules)
    assert [request["model"] for _, request in calls] == ["billing", "tiny"]


# -- hf:// adapters ------------------------------------------------------------------------------------------

@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, lora_file: Path) -> Iterator[Hub]:
    monkeypatch.setattr(fetch, "RETRY_DELAYS_SECONDS", (0.0,))
    files = {f"/{REPO}/resolve/{REV}/adapter_config.json": b'{"r": 8, "lora_alpha": 16}',
             f"/{REPO}/resolve/{REV}/adapter_model.safetensors": b"tensors",
             f"/{REPO}/resolve/{REV}/support.gguf": lora_file.read_bytes()}
    yield from serve(Hub(files=files))


def test_hub_adapters_are_downloaded_before_the_engine_starts(hub: Hub, tmp_path: Path) -> None:
    environ = {"HF_ENDPOINT": hub.url}
    vllm = Settings(engine="vllm", model="org/base", adapters_dir=str(tmp_path),
                    adapters=(Lora("peft", f"hf://{REPO}@{REV}"), Lora("local", "/x")))
    fetched = fetch_adapters(vllm, environ)
    folder = tmp_path / "acme--support-lora" / REV
    assert fetched.adapters == (Lora("peft", str(folder)), Lora("local", "/x"))
    assert (folder / "adapter_config.json").read_bytes() == b'{"r": 8, "lora_alpha": 16}'
    assert (folder / "adapter_model.safetensors").read_bytes() == b"tensors"
    assert f"--lora-modules peft={folder} local=/x" in " ".join(ENGINES["vllm"].command(fetched, "python", 1))

    digest = hashlib.sha256(hub.files[f"/{REPO}/resolve/{REV}/support.gguf"]).hexdigest()
    llama = Settings(engine="llamacpp", adapters_dir=str(tmp_path),
                     adapters=(Lora("support", f"hf://{REPO}@{REV}/support.gguf#sha256={digest}"),))
    assert fetch_adapters(llama, environ).adapters == (Lora("support", str(folder / "support.gguf")),)
    asked = len(hub.requests)
    fetch_adapters(llama, environ)
    assert len(hub.requests) == asked  # cached: not downloaded again


def test_a_failed_download_names_the_adapter(hub: Hub, tmp_path: Path) -> None:
    wrong = "0" * 64
    llama = Settings(engine="llamacpp", adapters_dir=str(tmp_path),
                     adapters=(Lora("support", f"hf://{REPO}@{REV}/support.gguf#sha256={wrong}"),))
    with pytest.raises(fetch.FetchError, match=rf"^adapter support \(hf://{REPO}@{REV}/support.gguf#sha256=0+\): "
                                               "sha256 mismatch"):
        fetch_adapters(llama, {"HF_ENDPOINT": hub.url})
    missing = Settings(engine="vllm", adapters_dir=str(tmp_path), adapters=(Lora("gone", f"hf://acme/gone@{REV}"),))
    with pytest.raises(fetch.FetchError, match="^adapter gone "):
        fetch_adapters(missing, {"HF_ENDPOINT": hub.url})


def test_the_adapter_exits_when_an_adapter_cannot_be_downloaded(hub: Hub, tiny_model: Path, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "selfhost_adapter", "--engine", "llamacpp", "--model", str(tiny_model),
            "--adapters", f"x=hf://acme/gone@{REV}/x.gguf", "--adapters-dir", str(tmp_path)]
    done = subprocess.run(argv, env={**os.environ, "HF_ENDPOINT": hub.url}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and f"error: adapter x (hf://acme/gone@{REV}/x.gguf): " in done.stderr
    assert "Traceback" not in done.stderr and "starting engine" not in done.stderr


# -- `selfhost serve --lora` ---------------------------------------------------------------------------------

def test_serve_passes_lora_options_as_one_adapters_setting() -> None:
    argv = adapter_argv("/venv/bin/selfhost-adapter", LocalEngine.llamacpp, "m.gguf", "127.0.0.1", 9000, None,
                        ["--log-prompts", "true"], ["a=/a.gguf", "b=/b.gguf"])
    assert argv[-4:] == ["--adapters", "a=/a.gguf,b=/b.gguf", "--log-prompts", "true"]


def test_serve_refuses_a_missing_lora_file(tiny_model: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--model", str(tiny_model), "--lora",
                                      f"support={tmp_path / 'nope.gguf'}", "--lora", "bad"])
    assert result.exit_code == 1
    assert f"--lora 'support={tmp_path / 'nope.gguf'}': {tmp_path / 'nope.gguf'}: no such file" in result.output
    assert "--lora 'bad': write NAME=PATH" in result.output


# -- end to end: `selfhost serve` with llama.cpp -------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tiny_model: Path, keys_file: Path, lora_file: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`selfhost serve` with two adapters on the tiny model: `support` from a file, `billing` (other weights)
    downloaded from a stand-in Hub at start."""
    work = tmp_path_factory.mktemp("lora-serve")
    billing = write_tiny_lora(work / "billing.gguf", seed=2).read_bytes()
    digest = hashlib.sha256(billing).hexdigest()
    selfhost = str(Path(sys.executable).parent / "selfhost")
    for hub in serve(Hub(files={f"/{REPO}/resolve/{REV}/billing.gguf": billing})):
        running = start_adapter(
            work, "serve", "--model", str(tiny_model), "--api-keys-file", str(keys_file),
            "--lora", f"support={lora_file}", "--lora", f"billing=hf://{REPO}@{REV}/billing.gguf#sha256={digest}",
            "--adapters-dir", str(work / "cache"), "--max-tokens-cap", "32", "--model-aliases", "gpt-4o-mini",
            command=[selfhost], env={"HF_ENDPOINT": hub.url})
    assert (work / "cache" / "acme--support-lora" / REV / "billing.gguf").read_bytes() == billing
    yield running
    stop_process(running.proc)


@pytest.fixture
def client(served: Running) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url + "/v1", api_key=KEYS["team-a"], max_retries=0)


def complete(client: openai.OpenAI, model: str, prompt: str = PROMPT, answered_as: str | None = None) -> str:
    answer = client.completions.create(model=model, prompt=prompt, max_tokens=12, temperature=0)
    assert answer.model == (answered_as or model)
    assert answer.usage is not None and answer.usage.completion_tokens == 12
    return answer.choices[0].text


@pytest.mark.slow
def test_each_adapter_answers_with_its_own_weights_and_leaves_nothing_behind(client: openai.OpenAI) -> None:
    base = complete(client, "tiny")
    support = complete(client, "support")
    assert support != base
    assert complete(client, "tiny") == base  # the adapter is off again, and its KV cache not reused
    billing = complete(client, "billing")
    assert len({base, support, billing}) == 3
    assert complete(client, "support") == support  # adapter to adapter
    assert complete(client, "gpt-4o-mini", answered_as="tiny") == base  # an alias is the base
    assert complete(client, "tiny") == base


@pytest.mark.slow
def test_requests_at_once_for_different_models_each_get_their_own(client: openai.OpenAI) -> None:
    expected = {model: complete(client, model) for model in ("tiny", "support", "billing")}
    order = ["tiny", "support", "billing", "support", "tiny", "billing", "tiny", "support"] * 2
    with ThreadPoolExecutor(len(order)) as pool:
        answers = list(pool.map(lambda model: complete(client, model), order))
    assert answers == [expected[model] for model in order]


@pytest.mark.slow
def test_a_stream_from_an_adapter(client: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
    whole = client.chat.completions.create(model="support", messages=messages, max_tokens=10, temperature=0)
    base = client.chat.completions.create(model="tiny", messages=messages, max_tokens=10, temperature=0)
    pieces: list[str] = []
    for chunk in client.chat.completions.create(model="support", messages=messages, max_tokens=10, temperature=0,
                                                stream=True):
        assert chunk.model == "support"
        pieces.extend(choice.delta.content or "" for choice in chunk.choices)
    assert "".join(pieces) == whole.choices[0].message.content != base.choices[0].message.content


@pytest.mark.slow
def test_an_unknown_model_is_not_found_and_the_list_has_every_adapter(served: Running,
                                                                      client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.completions.create(model="suport", prompt=PROMPT, max_tokens=2)
    assert caught.value.code == "model_not_found"
    assert "this server serves 'tiny' and its adapters 'support', 'billing'" in caught.value.message
    models = [(m.id, getattr(m, "parent", None)) for m in client.models.list()]
    assert models == [("tiny", None), ("gpt-4o-mini", None), ("support", "tiny"), ("billing", "tiny")]


@pytest.mark.slow
def test_sagemaker_and_vertex_bodies_may_name_an_adapter(served: Running, client: openai.OpenAI) -> None:
    support = complete(client, "support", "hi")
    body = {"model": "support", "prompt": "hi", "max_tokens": 12, "temperature": 0}
    r = httpx.post(served.url + "/invocations", json=body, timeout=30)
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == support
    vertex = {"instances": ["hi"], "parameters": {"model": "support", "max_tokens": 12, "temperature": 0}}
    r = httpx.post(served.url + "/predict", json=vertex, timeout=30)
    assert r.status_code == 200 and r.json()["predictions"][0]["choices"][0]["text"] == support
    assert log_of(served, r)["model"] == "support"


@pytest.mark.slow
def test_metrics_and_the_usage_log_name_each_model(served: Running) -> None:
    before = {m: metric(served, "selfhost_completion_tokens_total", key_id="team-b", model=m)
              for m in ("tiny", "support")}
    lines = {}
    for model in ("tiny", "support", "support"):
        r = httpx.post(served.url + "/v1/completions", headers=auth("team-b"), timeout=30,
                       json={"model": model, "prompt": PROMPT, "max_tokens": 5, "temperature": 0})
        assert r.status_code == 200
        lines[model] = log_of(served, r)
    assert metric(served, "selfhost_completion_tokens_total", key_id="team-b", model="tiny") == before["tiny"] + 5
    assert metric(served, "selfhost_completion_tokens_total", key_id="team-b", model="support") == \
        before["support"] + 10
    assert metric(served, "selfhost_prompt_tokens_total", key_id="team-b", model="support") > 0
    assert metric(served, "selfhost_requests_total", route="openai_completions", key_id="team-b", status="200",
                  model="support") >= 2
    httpx.get(served.url + "/ping")
    assert metric(served, "selfhost_requests_total", route="sagemaker_ping", model="-") >= 1  # names no model
    assert {model: (line["model"], line["completion_tokens"]) for model, line in lines.items()} == \
        {"tiny": ("tiny", 5), "support": ("support", 5)}
