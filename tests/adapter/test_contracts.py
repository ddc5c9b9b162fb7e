"""The adapter's pure parts: request checks, the SageMaker/TGI and Vertex translations, SSE relaying, keys,
settings. No process, no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selfhost_adapter import contracts as c
from selfhost_adapter.app import CONTRACTS, SseRelay, engine_error
from selfhost_adapter.engines import ENGINES
from selfhost_adapter.errors import ERRORS, ApiError
from selfhost_adapter.keys import KeyRing, parse_keys
from selfhost_adapter.settings import Settings, SettingsError, gguf_file, parse_settings
from selfhost_adapter.usage import Call


def test_max_tokens_defaults_to_the_cap_and_is_capped() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert c.check_openai(body, c.CHAT, 128) is True
    assert body["max_tokens"] == 128
    assert c.check_openai({"prompt": "x", "max_tokens": 128}, c.COMPLETIONS, 128) is False
    with pytest.raises(ApiError) as err:
        c.check_openai({"prompt": "x", "max_tokens": 129}, c.COMPLETIONS, 128)
    assert (err.value.status, err.value.param) == (422, "max_tokens")
    with pytest.raises(ApiError):
        c.check_openai({"prompt": "x", "max_completion_tokens": 0}, c.COMPLETIONS, 128)


@pytest.mark.parametrize("body, param", [
    ({"messages": []}, "messages"),
    ({"messages": [{"content": "no role"}]}, "messages"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": True}, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 0}, "n"),
    ({"prompt": "x"}, "messages"),
])
def test_invalid_chat_parameters_are_422_naming_the_parameter(body: dict, param: str) -> None:
    with pytest.raises(ApiError) as err:
        c.check_openai(body, c.CHAT, 64)
    assert err.value.status == 422 and err.value.param == param


def test_malformed_bodies_are_400() -> None:
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe", b""):
        with pytest.raises(ApiError) as err:
            c.parse_json_object(raw)
        assert err.value.status == 400


def test_sagemaker_bodies_are_told_apart_by_their_marking_key() -> None:
    assert c.route_invocation({"messages": []}) == c.CHAT
    assert c.route_invocation({"prompt": "x"}) == c.COMPLETIONS
    assert c.route_invocation({"inputs": "x"}) == "tgi"
    with pytest.raises(ApiError) as err:
        c.route_invocation({"text": "x"})
    assert err.value.status == 422


def test_tgi_parameters_map_to_openai_names_and_the_engine_spelling() -> None:
    tgi = c.parse_tgi({"inputs": "Hello", "parameters": {
        "max_new_tokens": 5, "temperature": 0.5, "top_p": 0.9, "stop": ["\n"], "repetition_penalty": 1.1,
        "do_sample": False, "details": False, "return_full_text": True}}, dict(ENGINES["llamacpp"].renames))
    assert tgi.prompts == ["Hello"]
    assert tgi.return_full_text is True
    assert tgi.params == {"max_tokens": 5, "temperature": 0.0, "top_p": 0.9, "stop": ["\n"], "repeat_penalty": 1.1}
    assert c.parse_tgi({"inputs": "x", "parameters": {"repetition_penalty": 1.2}}, {}).params == {
        "repetition_penalty": 1.2}


@pytest.mark.parametrize("body", [
    {"inputs": 3},
    {"inputs": []},
    {"inputs": "x", "parameters": []},
    {"inputs": "x", "parameters": {"best_of": 2}},
    {"inputs": "x", "parameters": {"details": True}},
])
def test_tgi_requests_we_cannot_honour_are_422(body: dict) -> None:
    with pytest.raises(ApiError) as err:
        c.parse_tgi(body, {})
    assert err.value.status == 422


def test_vertex_instances_become_one_request_each_with_shared_parameters() -> None:
    calls = c.parse_vertex({"instances": ["plain", {"prompt": "p", "max_tokens": 3},
                                         {"messages": [{"role": "user", "content": "m"}]}],
                            "parameters": {"max_tokens": 8, "temperature": 0}}, 16)
    assert [path for path, _ in calls] == [c.COMPLETIONS, c.COMPLETIONS, c.CHAT]
    assert [r["max_tokens"] for _, r in calls] == [8, 3, 8]  # the instance's own value wins
    assert all(r["stream"] is False and r["temperature"] == 0 for _, r in calls)


@pytest.mark.parametrize("body, param", [
    ({"instances": []}, "instances"),
    ({"instances": "x"}, "instances"),
    ({"instances": [1]}, "instances[0]"),
    ({"instances": ["a", {"prompt": "b", "max_tokens": 99}]}, "instances[1].max_tokens"),
    ({"instances": ["a"], "parameters": "x"}, "parameters"),
    ({"instances": ["a"] * (c.MAX_INSTANCES + 1)}, "instances"),
])
def test_bad_vertex_requests_are_422_naming_the_instance(body: dict, param: str) -> None:
    with pytest.raises(ApiError) as err:
        c.parse_vertex(body, 16)
    assert err.value.status == 422 and err.value.param == param


def test_error_bodies_are_openai_shaped_for_every_status() -> None:
    for status, (kind, code) in ERRORS.items():
        doc = json.loads(ApiError(status, "why").body())
        assert doc == {"error": {"message": "why", "type": kind, "code": code, "param": None}}
    assert dict(ApiError(429, "x").headers()) == {b"retry-after": b"1"}


def test_engine_errors_keep_the_engines_words_and_client_status() -> None:
    err = engine_error(422, b'{"detail": [{"msg": "bad field"}]}')
    assert err.status == 422 and "bad field" in err.message
    err = engine_error(400, b'{"error": {"message": "model not found"}}')
    assert err.status == 400 and "model not found" in err.message
    assert engine_error(500, b"boom").status == 502
    assert engine_error(418, b"teapot").status == 400
    assert engine_error(503, b"{}").status == 503


def _events(*docs: object) -> list[bytes]:
    return [b"data: " + (d if isinstance(d, bytes) else json.dumps(d).encode()) + b"\r\n\r\n" for d in docs]


CHUNKS = [{"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]},
          {"choices": [{"delta": {"content": "a"}, "finish_reason": None}]},
          {"choices": [{"delta": {"content": "b"}, "finish_reason": "length"}]}]


def test_sse_relay_forwards_whole_events_however_the_bytes_are_cut() -> None:
    stream = b"".join(_events(*CHUNKS, b"[DONE]"))
    for cut in (1, 7, 50, len(stream)):
        call = Call("t", "r")
        relay = SseRelay(call, drop_usage_events=True)
        out = b"".join(relay.feed(stream[i:i + cut]) for i in range(0, len(stream), cut)) + relay.close()
        relay.finish()
        assert out == stream
        assert (call.completion_tokens, call.tokens_counted) == (2, "chunks")


def test_sse_relay_takes_engine_usage_and_hides_the_usage_event_it_asked_for() -> None:
    usage = {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}
    stream = b"".join(_events(*CHUNKS, usage, b"[DONE]"))
    call = Call("t", "r")
    relay = SseRelay(call, drop_usage_events=True)
    out = relay.feed(stream)
    relay.finish()
    assert b'"usage"' not in out and out.endswith(b"data: [DONE]\r\n\r\n")
    assert (call.prompt_tokens, call.completion_tokens, call.tokens_counted) == (4, 2, "engine")
    kept = SseRelay(Call("t", "r"), drop_usage_events=False).feed(stream)
    assert b'"usage"' in kept


def test_sse_relay_speaks_tgi_stream_events() -> None:
    chunks = [{"choices": [{"text": "a", "finish_reason": None}]}, {"choices": [{"text": "b", "finish_reason": "length"}]}]
    relay = SseRelay(Call("t", "r"), drop_usage_events=True, tgi_prefix="P:")
    out = relay.feed(b"".join(_events(*chunks, b"[DONE]")))
    events = [json.loads(e[5:]) for e in out.split(b"\n\n") if e]
    assert [e["token"]["text"] for e in events] == ["a", "b"]
    assert [e["generated_text"] for e in events] == [None, "P:ab"]


def test_key_file_lines_ids_and_comments() -> None:
    keys = parse_keys("# comment\n\nteam-a: s3cret-a\nplainsecret\nbad-line-without-secret:\n")
    assert set(keys) == {"team-a", next(k for k in keys if k.startswith("key-"))}
    assert len(keys) == 2
    assert all(len(digest) == 32 for digest in keys.values())


def test_keyring_knows_keys_by_id_and_never_echoes_them(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("team-a:alpha-secret\nteam-b:beta-secret\n")
    ring = KeyRing(str(path))
    assert ring.check(b"Bearer alpha-secret") == "team-a"
    assert ring.check(b"bearer beta-secret") == "team-b"
    for header in (None, b"", b"Basic alpha-secret", b"Bearer alpha-secre", b"Bearer wrong"):
        with pytest.raises(ApiError) as err:
            ring.check(header)
        assert err.value.status == 401
        assert b"secret" not in err.value.body()
    assert KeyRing("").check(None) == "-"


def test_settings_flags_beat_env_and_platform_variables_are_read(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    env = {"AIP_HTTP_PORT": "7080", "AIP_HEALTH_ROUTE": "/v1/endpoints/1/deployedModels/2",
           "AIP_PREDICT_ROUTE": "/v1/endpoints/1/deployedModels/2:predict", "SELFHOST_MODEL": str(model),
           "SELFHOST_MAX_TOKENS_CAP": "100"}
    s = parse_settings(["vertex"], env)
    assert (s.platform, s.port, s.max_tokens_cap, s.model_name or s.resolved_model_name()) == ("vertex", 7080, 100, "m")
    assert s.predict_route.endswith(":predict")
    assert parse_settings(["vertex", "--port", "9000"], env).port == 9000
    assert parse_settings([], {"SELFHOST_MODEL": str(model)}).platform == "serve"  # what SageMaker runs


def test_settings_list_every_problem_at_once(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings(["--max-body-bytes", "lots", "--max-tokens-cap", "0", "--engine", "external",
                        "--model", str(tmp_path / "missing.gguf")], {})
    text = str(err.value)
    assert "--max-body-bytes: 'lots'" in text
    assert "max_tokens_cap: must be positive" in text
    assert "needs --engine-url" in text


def test_a_model_folder_serves_its_gguf_file(tmp_path: Path) -> None:
    (tmp_path / "b-00002-of-00002.gguf").write_bytes(b"")
    (tmp_path / "b-00001-of-00002.gguf").write_bytes(b"")
    assert gguf_file(str(tmp_path)) == tmp_path / "b-00001-of-00002.gguf"
    assert gguf_file(str(tmp_path / "nothing")) is None
    argv = ENGINES["llamacpp"].command(Settings(model=str(tmp_path), model_name="m"), "py", 1234)
    assert argv[argv.index("--model") + 1] == str(tmp_path / "b-00001-of-00002.gguf")
    assert argv[argv.index("--host") + 1] == "127.0.0.1"


def test_vllm_command_listens_on_loopback_with_the_served_name() -> None:
    argv = ENGINES["vllm"].command(Settings(engine="vllm", model="Qwen/Qwen2.5-1.5B-Instruct"), "python3", 8001)
    assert argv[:3] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--served-model-name") + 1] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "8001"


def test_every_platform_serves_openai_and_its_own_contract() -> None:
    assert all("openai" in contracts for contracts in CONTRACTS.values())
    assert "sagemaker" in CONTRACTS["serve"] and "vertex" in CONTRACTS["vertex"]
    assert CONTRACTS["openai"] == {"openai"}


@pytest.mark.parametrize("payload, counted", [
    (b'{"choices":[{"delta":{"content":"x"}}]}', 1),
    (b'{"choices": [{"delta": {"content": "\\"quoted\\""}}]}', 1),
    (b'{"choices":[{"delta":{"content":""}}]}', 0),
    (b'{"choices":[{"delta":{"content":null,"role":"assistant"}}]}', 0),
    (b'{"choices":[{"text":"t","finish_reason":null}]}', 1),
    (b'{"choices":[{"text":"","finish_reason":"length"}]}', 0),
])
def test_streamed_pieces_are_counted_without_parsing(payload: bytes, counted: int) -> None:
    call = Call("t", "r")
    relay = SseRelay(call, drop_usage_events=True)
    assert relay.feed(b"data:" + payload + b"\n\n") == b"data:" + payload + b"\n\n"
    relay.finish()
    assert call.completion_tokens == counted
