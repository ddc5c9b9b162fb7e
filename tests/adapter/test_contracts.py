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

RULES = c.Rules(64, "tiny")


def test_max_tokens_defaults_to_the_cap_and_is_capped() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert c.Rules(128, "tiny").check(body, c.CHAT) is True
    assert body["max_tokens"] == 128
    assert c.Rules(128, "tiny").check({"prompt": "x", "max_tokens": 128, "model": "tiny"}, c.COMPLETIONS) is False
    with pytest.raises(ApiError) as err:
        c.Rules(128, "tiny").check({"prompt": "x", "max_tokens": 129}, c.COMPLETIONS)
    assert (err.value.status, err.value.param) == (422, "max_tokens")
    with pytest.raises(ApiError):
        c.Rules(128, "tiny").check({"prompt": "x", "max_completion_tokens": 0}, c.COMPLETIONS)


@pytest.mark.parametrize("body, param", [
    ({"messages": []}, "messages"),
    ({"messages": [{"content": "no role"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": True}, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 0}, "n"),
    ({"prompt": "x"}, "messages"),
])
def test_invalid_chat_parameters_are_422_naming_the_parameter(body: dict, param: str) -> None:
    with pytest.raises(ApiError) as err:
        c.Rules(64, "tiny").check(body, c.CHAT)
    assert err.value.status == 422 and err.value.param == param


# --- what clients get wrong, each a 4xx naming what they sent (issue 8: engines answered some with 500) ---------

USER = {"role": "user", "content": "x"}


@pytest.mark.parametrize("body, param", [
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [USER, {"role": "user", "content": 3}]}, "messages[1].content"),
    ({"messages": [{"role": "user", "content": {"text": "x"}}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "messages[0].content[0].text"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"messages": ["hello"]}, "messages[0]"),
    ({"messages": [USER], "logit_bias": "x"}, "logit_bias"),
    ({"messages": [USER], "logit_bias": {"50256": 101}}, "logit_bias"),
    ({"messages": [USER], "logit_bias": {"the": 1}}, "logit_bias"),
    ({"messages": [USER], "top_k": "x"}, "top_k"),
    ({"messages": [USER], "top_k": 1.5}, "top_k"),
    ({"messages": [USER], "repetition_penalty": 0}, "repetition_penalty"),
    ({"messages": [USER], "repetition_penalty": -(10**400)}, "repetition_penalty"),
    ({"messages": [USER], "repeat_penalty": "x"}, "repeat_penalty"),
    ({"messages": [USER], "temperature": float("inf")}, "temperature"),
    ({"messages": [USER], "user": 7}, "user"),
    ({"messages": [USER], "tools": {"type": "function"}}, "tools"),
    ({"messages": [USER], "model": 7}, "model"),
])
def test_what_engines_fail_on_is_422_here(body: dict, param: str) -> None:
    with pytest.raises(ApiError) as err:
        RULES.check(body, c.CHAT)
    assert (err.value.status, err.value.param) == (422, param)
    assert param in err.value.message


def test_huge_numbers_are_values_not_crashes() -> None:
    body = c.parse_json_object(b'{"prompt": "x", "repetition_penalty": 1' + b"0" * 400 + b'}')
    RULES.check(body, c.COMPLETIONS)  # a valid (if silly) penalty above 0


def test_an_assistant_turn_that_called_tools_needs_no_content() -> None:
    turn = {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]}
    RULES.check({"messages": [USER, turn, {"role": "tool", "content": "42", "tool_call_id": "1"}]}, c.CHAT)
    with pytest.raises(ApiError):
        RULES.check({"messages": [USER, {"role": "assistant", "content": None}]}, c.CHAT)


@pytest.mark.parametrize("raw", [
    b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}",
    b'{"a":' + b'{"a":' * 70 + b"1" + b"}" * 71,
])
def test_deep_nesting_is_400_not_a_crash(raw: bytes) -> None:
    with pytest.raises(ApiError) as err:
        c.parse_json_object(raw)
    assert err.value.status == 400 and "nests deeper" in err.value.message


def test_nesting_real_requests_use_parses() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "object"}}}}
    raw = json.dumps({"messages": [USER], "response_format": {"type": "json_schema", "json_schema": schema}})
    assert c.parse_json_object(raw.encode())["response_format"]["json_schema"] == schema


@pytest.mark.parametrize("raw", [b'{"prompt": "x", "top_k": NaN}', b'{"prompt": "x", "temperature": Infinity}',
                                 b'{"prompt": "x", "temperature": -Infinity}'])
def test_nan_and_infinity_are_not_json(raw: bytes) -> None:
    with pytest.raises(ApiError) as err:
        c.parse_json_object(raw)
    assert err.value.status == 400 and "not a JSON number" in err.value.message


def test_lone_surrogates_are_422_naming_where_but_pairs_are_text() -> None:
    with pytest.raises(ApiError) as err:
        c.parse_json_object(rb'{"messages": [{"role": "user", "content": "hi \ud800"}]}')
    assert (err.value.status, err.value.param) == (422, "messages[0].content")
    with pytest.raises(ApiError) as err:
        c.parse_json_object(rb'{"prompt": "x", "stop": ["ok", "\uDFFF"]}')
    assert err.value.param == "stop[1]"
    emoji = json.dumps({"prompt": "\U0001F600"})  # ensure_ascii: an escaped surrogate pair
    assert "\\ud83d" in emoji and c.parse_json_object(emoji.encode())["prompt"] == "\U0001F600"


def test_null_means_the_default_as_in_openai() -> None:
    body = {"messages": [USER], "stream": None, "temperature": None, "max_tokens": None, "stop": None}
    assert RULES.check(body, c.CHAT) is True
    assert body == {"messages": [USER], "model": "tiny", "max_tokens": 64}
    with pytest.raises(ApiError) as err:
        RULES.check({"messages": None}, c.CHAT)
    assert err.value.param == "messages"


def test_the_served_model_is_named_and_others_are_404() -> None:
    rules = c.Rules(64, "tiny", frozenset({"gpt-4o-mini"}))
    for asked in (None, "tiny", "gpt-4o-mini"):
        body = {"prompt": "x", "max_tokens": 2, **({"model": asked} if asked else {})}
        rules.check(body, c.COMPLETIONS)
        assert body["model"] == "tiny"
    for asked in ("gpt-4", "x" * 900_000):
        with pytest.raises(ApiError) as err:
            rules.check({"prompt": "x", "model": asked}, c.COMPLETIONS)
        assert (err.value.status, err.value.code, err.value.param) == (404, "model_not_found", "model")
        assert len(err.value.message) < 200


def test_an_empty_model_name_is_the_served_model() -> None:
    # Vertex's OpenAI-compatible route sends `model: ""` (the endpoint id in its URL names the model).
    rules = c.Rules(64, "tiny", frozenset({"gpt-4o-mini"}))
    for path, body in ((c.CHAT, {"messages": [USER], "model": ""}), (c.COMPLETIONS, {"prompt": "x", "model": ""})):
        assert rules.check(body, path) is True
        assert body["model"] == "tiny"
    for asked in (" ", "tiny "):  # only the empty name: a blank or near miss is still another model
        with pytest.raises(ApiError) as err:
            rules.check({"messages": [USER], "model": asked}, c.CHAT)
        assert (err.value.status, err.value.code) == (404, "model_not_found")


@pytest.mark.parametrize("parameters, param", [
    ({"max_new_tokens": 9999}, "parameters.max_new_tokens"),
    ({"max_new_tokens": "8"}, "parameters.max_new_tokens"),
    ({"stop_sequences": 3}, "parameters.stop_sequences"),
    ({"repetition_penalty": "x"}, "parameters.repetition_penalty"),
    ({"top_k": "x"}, "parameters.top_k"),
    ({"temperature": 9}, "parameters.temperature"),
    ({"do_sample": "yes"}, "parameters.do_sample"),
    ({"return_full_text": "false"}, "parameters.return_full_text"),
    ({"details": "no"}, "parameters.details"),
])
def test_tgi_errors_name_the_parameter_the_client_sent(parameters: dict, param: str) -> None:
    with pytest.raises(ApiError) as err:
        c.parse_tgi({"inputs": "x", "parameters": parameters}, {"repetition_penalty": "repeat_penalty"}, RULES)
    assert (err.value.status, err.value.param) == (422, param)
    assert f"'{param}'" in err.value.message


def test_tgi_inputs_are_capped_like_vertex_instances() -> None:
    assert len(c.parse_tgi({"inputs": ["x"] * c.MAX_INSTANCES}, {}, RULES).prompts) == c.MAX_INSTANCES
    with pytest.raises(ApiError) as err:
        c.parse_tgi({"inputs": ["x"] * 3000}, {}, RULES)
    assert (err.value.status, err.value.param) == (422, "inputs")


def test_tgi_greedy_wins_whatever_the_order() -> None:
    for parameters in ({"do_sample": False, "temperature": 0.9}, {"temperature": 0.9, "do_sample": False}):
        assert c.parse_tgi({"inputs": "x", "parameters": parameters}, {}, RULES).params["temperature"] == 0.0
    assert c.parse_tgi({"inputs": "x", "parameters": {"return_full_text": None}}, {}, RULES).return_full_text is False


def test_llamacpp_validation_500s_are_the_clients_422() -> None:
    report = ("1 validation error:\n  {'type': 'int_parsing', 'loc': ('body', 'top_k'), 'msg': 'Input should be a "
              "valid integer', 'input': 'x'}\n\n  File \"/x/app.py\", line 376")
    body = json.dumps({"error": {"message": report, "type": "internal_server_error"}}).encode()
    err = engine_error(500, body, ENGINES["llamacpp"].refusals)
    assert (err.status, err.param) == (422, "top_k") and "valid integer" in err.message and "app.py" not in err.message
    oom = b'{"error": {"message": "CUDA out of memory"}}'
    assert engine_error(500, oom, ENGINES["llamacpp"].refusals).status == 502
    assert engine_error(500, body).status == 502  # an engine without that habit


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
        "do_sample": False, "details": False, "return_full_text": True}}, dict(ENGINES["llamacpp"].renames), RULES)
    assert tgi.prompts == ["Hello"]
    assert tgi.return_full_text is True
    assert tgi.params == {"max_tokens": 5, "temperature": 0.0, "top_p": 0.9, "stop": ["\n"], "repeat_penalty": 1.1}
    assert c.parse_tgi({"inputs": "x", "parameters": {"repetition_penalty": 1.2}}, {}, RULES).params == {
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
        c.parse_tgi(body, {}, RULES)
    assert err.value.status == 422


def test_vertex_instances_become_one_request_each_with_shared_parameters() -> None:
    calls = c.parse_vertex({"instances": ["plain", {"prompt": "p", "max_tokens": 3},
                                         {"messages": [{"role": "user", "content": "m"}]}],
                            "parameters": {"max_tokens": 8, "temperature": 0}}, c.Rules(16, "tiny"))
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
        c.parse_vertex(body, c.Rules(16, "tiny"))
    assert err.value.status == 422 and err.value.param == param


def test_the_vertex_predict_route_tells_an_openai_chat_body_from_instances() -> None:
    chat = {"model": "", "messages": [USER], "stream": True}  # what Vertex's OpenAI route forwards
    assert c.route_prediction(chat) == c.CHAT
    assert c.route_prediction({"instances": ["a"]}) is None
    # With both, it is a Vertex prediction, as it always was; a prompt alone is no OpenAI body Vertex forwards.
    assert c.route_prediction({"instances": ["a"], "messages": [USER]}) is None
    assert c.route_prediction({"prompt": "x"}) is None
    calls = c.parse_vertex({"instances": ["a"], "messages": [USER]}, c.Rules(16, "tiny"))
    assert [path for path, _ in calls] == [c.COMPLETIONS]


@pytest.mark.parametrize("body", [{}, {"prompt": "x"}, {"parameters": {"max_tokens": 2}}])
def test_a_predict_body_with_neither_instances_nor_messages_is_a_clear_422(body: dict) -> None:
    assert c.route_prediction(body) is None
    with pytest.raises(ApiError) as err:
        c.parse_vertex(body, c.Rules(16, "tiny"))
    assert (err.value.status, err.value.param) == (422, "instances")
    assert "'instances'" in err.value.message and "'messages'" in err.value.message


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
    chunks = [{"choices": [{"text": "a", "finish_reason": None}]},
              {"choices": [{"text": "b", "finish_reason": "length"}]}]
    relay = SseRelay(Call("t", "r"), drop_usage_events=True, tgi_prefix="P:")
    out = relay.feed(b"".join(_events(*chunks, b"[DONE]")))
    events = [json.loads(e[5:]) for e in out.split(b"\n\n") if e]
    assert [e["token"]["text"] for e in events] == ["a", "b"]
    assert [e["generated_text"] for e in events] == [None, "P:ab"]
    assert not any(e["token"]["special"] for e in events)


def test_a_tgi_stream_that_ends_on_an_empty_chunk_ends_on_a_special_token() -> None:
    """llama.cpp ends a stream with a chunk of its own, without text: that is no extra text token."""
    chunks = [{"choices": [{"text": "a", "finish_reason": None}]}, {"choices": [{"text": "", "finish_reason": None}]},
              {"choices": [{"text": "", "finish_reason": "length"}]}]
    relay = SseRelay(Call("t", "r"), drop_usage_events=True, tgi_prefix="")
    events = [json.loads(e[5:]) for e in relay.feed(b"".join(_events(*chunks, b"[DONE]"))).split(b"\n\n") if e]
    assert [(e["token"]["text"], e["token"]["special"], e["generated_text"]) for e in events] == [
        ("a", False, None), ("", True, "a")]


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


def test_the_stall_window_is_a_setting() -> None:
    external = ["--engine", "external", "--engine-url", "http://127.0.0.1:1"]
    assert parse_settings(external, {}).engine_stall_seconds == 12.0
    assert parse_settings(external, {"SELFHOST_ENGINE_STALL_SECONDS": "4.5"}).engine_stall_seconds == 4.5
    assert parse_settings([*external, "--engine-stall-seconds", "6"], {"SELFHOST_ENGINE_STALL_SECONDS": "4"}) \
        .engine_stall_seconds == 6.0
    with pytest.raises(SettingsError, match="engine_stall_seconds: must be positive"):
        parse_settings([*external, "--engine-stall-seconds", "0"], {})
