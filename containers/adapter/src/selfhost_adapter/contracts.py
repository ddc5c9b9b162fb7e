"""The platform contracts as pure functions: request checks and the SageMaker/TGI and Vertex translations.

Everything the engine is sent is an OpenAI request (`/v1/chat/completions` or `/v1/completions`), which both
vLLM and llama.cpp serve. Nothing here does I/O, so all of it is tested without a server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any

from .errors import ApiError

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


def _number(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, Real) and not isinstance(v, bool) and lo <= v <= hi


def _integer(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _strings(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and all(isinstance(s, str) for s in v))


def _messages(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in v)


# The parameters the adapter checks before the engine sees them: (check, what is allowed). Others go to the
# engine as they are, and it answers for them.
PARAMS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "messages": (_messages, "a non-empty list of {role, content} objects"),
    "prompt": (_strings, "a string or a list of strings"),
    "stream": (lambda v: isinstance(v, bool), "true or false"),
    "temperature": (_number(0, 2), "a number from 0 to 2"),
    "top_p": (_number(0, 1), "a number from 0 to 1"),
    "n": (_integer(1, 16), "an integer from 1 to 16"),
    "presence_penalty": (_number(-2, 2), "a number from -2 to 2"),
    "frequency_penalty": (_number(-2, 2), "a number from -2 to 2"),
    "stop": (lambda v: _strings(v) or v is None, "a string or a list of strings"),
    "seed": (_integer(-(2**63), 2**64 - 1), "an integer"),
    "model": (lambda v: isinstance(v, str), "a string"),
}
REQUIRED = {CHAT: "messages", COMPLETIONS: "prompt"}
MAX_TOKENS_KEYS = ("max_tokens", "max_completion_tokens")


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "request body must be a JSON object")
    return doc


def check_openai(body: dict[str, Any], path: str, max_tokens_cap: int, where: str = "") -> bool:
    """Check an OpenAI request in place (422 on a bad value) and cap its tokens. True if the body changed."""
    required = REQUIRED[path]
    if required not in body:
        raise ApiError(422, f"'{where}{required}' is required", where + required)
    for name, value in body.items():
        rule = PARAMS.get(name)
        if rule and not rule[0](value):
            raise ApiError(422, f"'{where}{name}' must be {rule[1]}", where + name)
    asked = [k for k in MAX_TOKENS_KEYS if body.get(k) is not None]
    for key in asked:
        value = body[key]
        if not _integer(1, max_tokens_cap)(value):
            raise ApiError(422, f"'{where}{key}' must be an integer from 1 to {max_tokens_cap} (this server's cap)",
                           where + key)
    if not asked:
        # Without a cap an engine generates until the context is full: the cap is the default.
        body["max_tokens"] = max_tokens_cap
        return True
    return False


# --- SageMaker: OpenAI bodies, and the TGI body the Hugging Face containers take ----------------------------

# TGI parameter -> OpenAI parameter.
TGI_PARAMS: dict[str, str] = {
    "max_new_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "stop": "stop",
    "stop_sequences": "stop",
    "seed": "seed",
    "repetition_penalty": "repetition_penalty",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
# TGI parameters that ask for something only TGI does: accepted only when they ask for nothing.
TGI_IGNORED_WHEN_FALSE = ("details", "decoder_input_details", "watermark")


@dataclass(frozen=True)
class TgiRequest:
    prompts: list[str]
    params: dict[str, Any]
    return_full_text: bool


def route_invocation(body: dict[str, Any]) -> str:
    """Which contract a SageMaker body speaks, by the key that marks it."""
    for key, kind in (("messages", CHAT), ("prompt", COMPLETIONS), ("inputs", "tgi")):
        if key in body:
            return kind
    raise ApiError(422, "body must have 'messages' (OpenAI chat), 'prompt' (OpenAI completion) or "
                        "'inputs' (TGI)")


def parse_tgi(body: dict[str, Any], renames: dict[str, str]) -> TgiRequest:
    inputs = body["inputs"]
    if not _strings(inputs) or inputs == []:
        raise ApiError(422, "'inputs' must be a string or a non-empty list of strings", "inputs")
    parameters = body.get("parameters")
    parameters = {} if parameters is None else parameters
    if not isinstance(parameters, dict):
        raise ApiError(422, "'parameters' must be an object", "parameters")
    params: dict[str, Any] = {}
    for name, value in parameters.items():
        if name in TGI_PARAMS:
            target = TGI_PARAMS[name]
            params[renames.get(target, target)] = value
        elif name == "do_sample":
            if value is False:
                params["temperature"] = 0.0
        elif name in TGI_IGNORED_WHEN_FALSE and not value:
            continue
        elif name != "return_full_text":
            raise ApiError(422, f"'parameters.{name}' is not supported; supported: "
                                f"{', '.join([*TGI_PARAMS, 'do_sample', 'return_full_text'])}", f"parameters.{name}")
    return TgiRequest(prompts=[inputs] if isinstance(inputs, str) else list(inputs), params=params,
                      return_full_text=bool(parameters.get("return_full_text", False)))


def tgi_completion(prompt: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": prompt, **params}


def completion_text(response: dict[str, Any]) -> str:
    """The generated text of an OpenAI completion or chat completion response (first choice)."""
    choices = response.get("choices") or [{}]
    first = choices[0]
    if "text" in first:
        return first.get("text") or ""
    return (first.get("message") or {}).get("content") or ""


def chunk_text(chunk: dict[str, Any]) -> str:
    """The new text in one streamed OpenAI chunk (completion or chat)."""
    choices = chunk.get("choices") or [{}]
    first = choices[0]
    if "text" in first:
        return first.get("text") or ""
    return (first.get("delta") or {}).get("content") or ""


# --- Vertex AI: {"instances": [...], "parameters": {...}} -> {"predictions": [...]} ---------------------

MAX_INSTANCES = 64


def parse_vertex(body: dict[str, Any], max_tokens_cap: int) -> list[tuple[str, dict[str, Any]]]:
    """One (engine path, OpenAI request) per instance: a chat instance has `messages`, a completion instance
    has `prompt` or is a plain string. `parameters` apply to every instance; an instance's own keys win."""
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise ApiError(422, "'instances' must be a non-empty list", "instances")
    if len(instances) > MAX_INSTANCES:
        raise ApiError(422, f"at most {MAX_INSTANCES} instances per request", "instances")
    parameters = body.get("parameters")
    parameters = {} if parameters is None else parameters
    if not isinstance(parameters, dict):
        raise ApiError(422, "'parameters' must be an object", "parameters")
    calls = []
    for i, instance in enumerate(instances):
        if isinstance(instance, str):
            instance = {"prompt": instance}
        if not isinstance(instance, dict):
            raise ApiError(422, f"'instances[{i}]' must be a string or an object", f"instances[{i}]")
        request = {**parameters, **instance, "stream": False}
        path = CHAT if "messages" in request else COMPLETIONS
        check_openai(request, path, max_tokens_cap, where=f"instances[{i}].")
        calls.append((path, request))
    return calls
