"""The platform contracts as pure functions: request checks and the SageMaker/TGI and Vertex translations.

Everything the engine is sent is an OpenAI request (`/v1/chat/completions` or `/v1/completions`), which both
vLLM and llama.cpp serve. A request is checked here before the engine sees it, so a client's mistake is a 4xx
naming the parameter the client sent, never an engine failure (engines answer some bad values with a 500).
Nothing here does I/O, so all of it is tested without a server.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"

# Deeper than any real request (a tool's JSON schema nests a few levels); deep enough nesting would exhaust
# the parser's recursion.
MAX_JSON_DEPTH = 64
# At most this many engine calls from one request: Vertex instances, TGI inputs.
MAX_INSTANCES = 64


# The values checked come from json.loads, whose numbers are int or float.
def _number(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi


def _positive(v: Any) -> bool:
    # math.isfinite cannot take an int too large for a float (10**400 is valid JSON): ints are finite anyway.
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v and (
        isinstance(v, int) or math.isfinite(v))


def _integer(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _string(v: Any) -> bool:
    return isinstance(v, str)


def _strings(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and all(isinstance(s, str) for s in v))


def _object(v: Any) -> bool:
    return isinstance(v, dict)


def _token_bias(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and k.isdigit() and _number(-100, 100)(b)
                                       for k, b in v.items())


# The parameters the adapter checks before the engine sees them: (check, what is allowed). Others go to the
# engine as they are, and it answers for them. `null` is OpenAI's "default" for each of them.
PARAMS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "prompt": (_strings, "a string or a list of strings"),
    "stream": (_bool, "true or false"),
    "stream_options": (_object, "an object"),
    "temperature": (_number(0, 2), "a number from 0 to 2"),
    "top_p": (_number(0, 1), "a number from 0 to 1"),
    "min_p": (_number(0, 1), "a number from 0 to 1"),
    "top_k": (_integer(-1, 2**31 - 1), "an integer, -1 or 0 for no limit"),
    "n": (_integer(1, 16), "an integer from 1 to 16"),
    "presence_penalty": (_number(-2, 2), "a number from -2 to 2"),
    "frequency_penalty": (_number(-2, 2), "a number from -2 to 2"),
    "repetition_penalty": (_positive, "a number above 0"),
    "repeat_penalty": (_positive, "a number above 0"),
    "logit_bias": (_token_bias, "an object mapping token ids (strings of digits) to numbers from -100 to 100"),
    "top_logprobs": (_integer(0, 20), "an integer from 0 to 20"),
    "stop": (_strings, "a string or a list of strings"),
    "seed": (_integer(-(2**63), 2**64 - 1), "an integer"),
    "user": (_string, "a string"),
    "echo": (_bool, "true or false"),
    "suffix": (_string, "a string"),
    "response_format": (_object, "an object"),
    "tools": (lambda v: isinstance(v, list) and all(isinstance(t, dict) for t in v), "a list of objects"),
    "tool_choice": (lambda v: isinstance(v, str | dict), "a string or an object"),
    "parallel_tool_calls": (_bool, "true or false"),
}
REQUIRED = {CHAT: "messages", COMPLETIONS: "prompt"}
MAX_TOKENS_KEYS = ("max_tokens", "max_completion_tokens")

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _check_messages(messages: Any, where: str) -> None:
    """OpenAI's chat message rules, each failure named down to the message and field."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(422, f"'{where}messages' must be a non-empty list of {{role, content}} objects",
                       where + "messages")
    for i, message in enumerate(messages):
        at = f"{where}messages[{i}]"
        if not isinstance(message, dict):
            raise ApiError(422, f"'{at}' must be an object with 'role' and 'content'", at)
        role = message.get("role")
        if role not in ROLES:
            raise ApiError(422, f"'{at}.role' must be one of {', '.join(ROLES)}", at + ".role")
        content = message.get("content")
        if content is None:
            # Only an assistant turn that called tools may come without content.
            if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
                continue
            raise ApiError(422, f"'{at}.content' is required for role '{role}'", at + ".content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise ApiError(422, f"'{at}.content' must be a string or a list of content parts", at + ".content")
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise ApiError(422, f"'{at}.content[{j}]' must be an object with a 'type'", f"{at}.content[{j}]")
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise ApiError(422, f"'{at}.content[{j}].text' must be a string", f"{at}.content[{j}].text")


def _no_constant(name: str) -> Any:
    raise ApiError(400, f"request body is not valid JSON: {name} is not a JSON number")


def _too_deep(doc: Any, limit: int) -> bool:
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


# A JSON escape of a UTF-16 surrogate (\ud800-\udfff): valid in pairs (how many clients escape emoji), an
# error alone. Only bodies holding one are searched for lone ones.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lone_surrogate(doc: Any, path: str = "") -> str | None:
    """The path of the first string (or key) that is not valid Unicode, or None."""
    if isinstance(doc, str):
        return None if _encodes(doc) else path or "(body)"
    if isinstance(doc, dict):
        items = [(f"{path}.{key}" if path else key, key, value) for key, value in doc.items()]
    elif isinstance(doc, list):
        items = [(f"{path}[{i}]", "", value) for i, value in enumerate(doc)]
    else:
        return None
    for at, key, value in items:
        if not _encodes(key):
            return at
        found = _lone_surrogate(value, at)
        if found is not None:
            return found
    return None


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise ApiError(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "request body must be a JSON object")
    # Depth is at most the number of brackets: count them first (fast), walk only when there are many.
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH and _too_deep(doc, MAX_JSON_DEPTH):
        raise ApiError(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(body):
        path = _lone_surrogate(doc)
        if path is not None:
            raise ApiError(422, f"'{path}' holds a lone UTF-16 surrogate escape: not valid Unicode text", path)
    return doc


@dataclass(frozen=True)
class Rules:
    """What a request to this server may ask for: its token cap and the model names it serves."""

    max_tokens_cap: int
    model: str
    """The served model's name: what the engine is asked for, answers with, and the usage log records."""
    aliases: frozenset[str] = frozenset()
    adapters: tuple[str, ...] = ()
    """Names of the LoRA adapters served on the model: the engine is asked for them by these names."""

    def check_value(self, name: str, value: Any, param: str) -> None:
        """One OpenAI parameter's value, with the error naming `param` (what the client called it)."""
        if name in MAX_TOKENS_KEYS:
            if not _integer(1, self.max_tokens_cap)(value):
                raise ApiError(422, f"'{param}' must be an integer from 1 to {self.max_tokens_cap} (this server's "
                                    "cap)", param)
            return
        rule = PARAMS.get(name)
        if rule and not rule[0](value):
            raise ApiError(422, f"'{param}' must be {rule[1]}", param)

    def check(self, body: dict[str, Any], path: str, where: str = "") -> bool:
        """Check an OpenAI request in place (422 on a bad value, 404 on an unknown model), name the served
        model (or the adapter asked for) in it and cap its tokens. True if the body changed."""
        required = REQUIRED[path]
        if body.get(required) is None:
            raise ApiError(422, f"'{where}{required}' is required", where + required)
        changed = False
        for name in [name for name, value in body.items() if value is None]:
            del body[name]  # OpenAI reads null as "the default"; engines do not all agree
            changed = True
        for name, value in body.items():
            if name == "messages":
                _check_messages(value, where)
            elif name != "model":
                self.check_value(name, value, where + name)
        changed |= self._name_model(body, where)
        if not any(k in body for k in MAX_TOKENS_KEYS):
            # Without a cap an engine generates until the context is full: the cap is the default.
            body["max_tokens"] = self.max_tokens_cap
            changed = True
        return changed

    def _name_model(self, body: dict[str, Any], where: str) -> bool:
        asked = body.get("model", self.model)
        if asked == self.model and "model" in body:
            return False
        if asked == "":
            # Vertex's OpenAI-compatible route names the model by the endpoint id in its URL and sends an empty
            # `model` (litellm's vertex_ai/openai provider does so too). An endpoint, and this server, serves one
            # model, so an empty name can only mean that one: read so on every route, where it names no other.
            asked = self.model
        if not isinstance(asked, str):
            raise ApiError(422, f"'{where}model' must be a string", where + "model")
        if asked in self.adapters:
            return False  # the engine knows its adapters by these names
        if asked != self.model and asked not in self.aliases:
            shown = asked if len(asked) <= 80 else asked[:80] + "..."
            served = f"{self.model!r}" + (f" and its adapters {', '.join(map(repr, self.adapters))}"
                                          if self.adapters else "")
            raise ApiError(404, f"The model {shown!r} does not exist: this server serves {served}",
                           where + "model", code="model_not_found")
        body["model"] = self.model
        return True


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
# TGI switches: `do_sample: false` is greedy decoding; the others ask for something only TGI does, and are
# accepted only when they ask for nothing.
TGI_FLAGS = ("do_sample", "return_full_text", "details", "decoder_input_details", "watermark")
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


def parse_tgi(body: dict[str, Any], renames: dict[str, str], rules: Rules) -> TgiRequest:
    """A TGI request, every value checked under the name the client sent."""
    inputs = body["inputs"]
    if not _strings(inputs) or inputs == []:
        raise ApiError(422, "'inputs' must be a string or a non-empty list of strings", "inputs")
    if isinstance(inputs, list) and len(inputs) > MAX_INSTANCES:
        raise ApiError(422, f"at most {MAX_INSTANCES} strings in 'inputs'", "inputs")
    parameters = body.get("parameters")
    parameters = {} if parameters is None else parameters
    if not isinstance(parameters, dict):
        raise ApiError(422, "'parameters' must be an object", "parameters")
    params: dict[str, Any] = {}
    flags: dict[str, bool] = {}
    for name, value in parameters.items():
        param = f"parameters.{name}"
        if value is None:
            continue  # TGI's "default", as in OpenAI
        if name in TGI_PARAMS:
            target = TGI_PARAMS[name]
            rules.check_value(target, value, param)
            params[renames.get(target, target)] = value
        elif name in TGI_FLAGS:
            if not isinstance(value, bool):
                raise ApiError(422, f"'{param}' must be true or false", param)
            if value and name in TGI_IGNORED_WHEN_FALSE:
                raise ApiError(422, f"'{param}' is not supported (only false)", param)
            flags[name] = value
        else:
            raise ApiError(422, f"'{param}' is not supported; supported: {', '.join([*TGI_PARAMS, *TGI_FLAGS])}",
                           param)
    if flags.get("do_sample") is False:
        params["temperature"] = 0.0
    return TgiRequest(prompts=[inputs] if isinstance(inputs, str) else list(inputs), params=params,
                      return_full_text=flags.get("return_full_text", False))


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


def route_prediction(body: dict[str, Any]) -> str | None:
    """CHAT for an OpenAI chat body on the Vertex predict route, None for Vertex's `{"instances": [...]}`.

    Vertex hands the container's predict route the body of its OpenAI-compatible chat route
    (`.../endpoints/<id>/chat/completions`), and of rawPredict and streamRawPredict, as the caller sent it: a
    body with `messages` and no `instances` is such a call. Only chat: the OpenAI route litellm's
    `vertex_ai/openai` provider calls; a body with `prompt` alone keeps its 422. A body with both `instances`
    and `messages` is a Vertex prediction, as before."""
    return CHAT if "instances" not in body and "messages" in body else None


def parse_vertex(body: dict[str, Any], rules: Rules) -> list[tuple[str, dict[str, Any]]]:
    """One (engine path, OpenAI request) per instance: a chat instance has `messages`, a completion instance
    has `prompt` or is a plain string. `parameters` apply to every instance; an instance's own keys win."""
    if "instances" not in body:
        raise ApiError(422, "body must have 'instances' (a Vertex prediction) or 'messages' (an OpenAI chat "
                            "completion)", "instances")
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
        rules.check(request, path, where=f"instances[{i}].")
        calls.append((path, request))
    return calls
