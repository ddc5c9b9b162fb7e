"""`python -m selfhost_adapter.llamacpp_lora`: llama-cpp-python's OpenAI server, serving LoRA adapters on its model.

Its own server applies one LoRA to the whole model at load time (`--lora_path`), and switching its "models" loads
the weights again. Here the base model is loaded once, each GGUF adapter once beside it, and each request's
`model` selects the adapter (or none, for the base) on the one context before it runs. The server answers one
request at a time (its locks), so a selection holds for the whole of a generation. The adapter in front of it
sends only names it serves: the base's and the adapters'.

    python -m selfhost_adapter.llamacpp_lora --lora_module NAME=PATH [--lora_module ...] <llama_cpp.server flags>

Run with the engine's Python; the adapter itself never imports this module (the vLLM image has no llama_cpp).
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import llama_cpp
import uvicorn
from llama_cpp import llama_cpp as lib
from llama_cpp.server import app as server_app
from llama_cpp.server.cli import add_args_from_model
from llama_cpp.server.model import LlamaProxy
from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class LoraProxy:
    """What the server asks for a model by name: the one loaded model, with the named adapter selected."""

    def __init__(self, base: LlamaProxy, adapters: Mapping[str, str]) -> None:
        self.base = base
        self.llama = base()
        self.adapters: dict[str, Any] = {}
        self.selected: str | None = None
        """The adapter selected on the context; None: the base model alone."""
        try:
            for name, path in adapters.items():
                handle = lib.llama_adapter_lora_init(self.llama.model, path.encode())
                if not handle:  # llama.cpp has logged why to stderr
                    raise RuntimeError(f"adapter {name}: llama.cpp cannot load {path} as a LoRA of this model")
                self.adapters[name] = handle
        except BaseException:
            self.free()
            raise

    def __call__(self, model: str | None = None) -> llama_cpp.Llama:
        wanted = model if model in self.adapters else None
        if wanted != self.selected:
            if wanted is None:
                status = lib.llama_set_adapters_lora(self.llama.ctx, None, 0, None)
            else:
                handles = (lib.llama_adapter_lora_p_ctypes * 1)(self.adapters[wanted])
                scales = (ctypes.c_float * 1)(1.0)
                status = lib.llama_set_adapters_lora(self.llama.ctx, handles, 1, scales)
            if status != 0:
                raise RuntimeError(f"llama.cpp could not select adapter {wanted or '(none)'}: status {status}")
            self.selected = wanted
            # The tokens evaluated so far were evaluated with the other weights: reusing their KV cache as a prompt
            # prefix would answer with a mix of both.
            self.llama.reset()
        return self.llama

    def __iter__(self) -> Iterator[str]:
        yield from self.base
        yield from self.adapters

    def free(self) -> None:
        """Take the adapters off the context, then free them (the model would free them too, but later)."""
        if self.selected is not None:
            lib.llama_set_adapters_lora(self.llama.ctx, None, 0, None)
            self.selected = None
        for handle in self.adapters.values():
            lib.llama_adapter_lora_free(handle)
        self.adapters.clear()


def _lora_module(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not (sep and name and path):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=PATH")
    return name, path


def _settings(cls: type[M], args: argparse.Namespace) -> M:
    return cls.model_validate({k: v for k, v in vars(args).items() if v is not None and k in cls.model_fields})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m selfhost_adapter.llamacpp_lora", allow_abbrev=False,
                                     description="llama-cpp-python's server with LoRA adapters chosen by `model`.")
    add_args_from_model(parser, Settings)
    parser.add_argument("--lora_module", type=_lora_module, action="append", default=[], metavar="NAME=PATH",
                        help="a GGUF LoRA adapter of the model, served as NAME (repeat for more)")
    args = parser.parse_args(argv)
    server = _settings(ServerSettings, args)
    model = _settings(ModelSettings, args)
    if model.cache:
        # Its prompt cache is keyed by tokens alone: a prompt's state saved under one adapter would be reused
        # under another.
        parser.error("--cache cannot be used with adapters")
    app = server_app.create_app(server_settings=server, model_settings=[model])  # loads the model
    base = server_app._llama_proxy
    if base is None:
        sys.exit("llama_cpp.server created no model proxy")
    proxy = LoraProxy(base, dict(args.lora_module))
    # The server's routes take the model from this global at each request: it serves the calls they make of a
    # LlamaProxy (call it with a name, iterate over names).
    server_app._llama_proxy = proxy  # type: ignore[assignment]
    try:
        uvicorn.run(app, host=server.host, port=server.port)
    finally:
        proxy.free()


if __name__ == "__main__":
    main()
