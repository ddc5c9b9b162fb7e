"""`selfhost serve`: run the serving adapter and its engine on this machine, the way the images do.

The do-it-yourself path for a laptop or an edge box: the very adapter the images run (the
`selfhost-adapter` program from containers/adapter), started with every contract on. The infrastructure
side never imports the adapter; this command starts it as a user would, and then *is* it (exec), so signals
and the exit code are the adapter's own.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypedDict

import typer

ADAPTER = "selfhost-adapter"


class CommandSettings(TypedDict):
    """The keyword arguments of `typer.Typer.command` that a command here is registered with."""

    name: str
    context_settings: dict[str, Any]


# Registered by cli.py with these settings: anything after the known options goes to the adapter as it is.
SERVE_SETTINGS = CommandSettings(name="serve",
                                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})


class LocalEngine(StrEnum):
    llamacpp = "llamacpp"
    vllm = "vllm"


def adapter_command() -> str | None:
    """The adapter installed beside this Python (the project's venv), else on the PATH."""
    beside = Path(sys.executable).parent / ADAPTER
    return str(beside) if beside.is_file() else shutil.which(ADAPTER)


def adapter_argv(adapter: str, engine: LocalEngine, model: str, host: str, port: int, api_keys_file: Path | None,
                 extra: list[str], loras: Sequence[str] = ()) -> list[str]:
    argv = [adapter, "all", "--engine", engine.value, "--model", model, "--host", host, "--port", str(port)]
    if api_keys_file is not None:
        argv += ["--api-keys-file", str(api_keys_file)]
    if loras:
        argv += ["--adapters", ",".join(loras)]
    return argv + extra


def lora_problems(engine: LocalEngine, loras: Sequence[str]) -> list[str]:
    """What is wrong with the --lora items that is best said before the adapter starts: the form, and for
    llama.cpp a file that is not there. The adapter checks the rest (names, Hub sources, PEFT folders)."""
    problems = []
    for item in loras:
        name, sep, source = item.partition("=")
        if not (sep and name and source) or "," in item:
            problems.append(f"--lora {item!r}: write NAME=PATH (one adapter per --lora)")
        elif engine is LocalEngine.llamacpp and not source.startswith("hf://") and not Path(source).is_file():
            problems.append(f"--lora {item!r}: {source}: no such file (llama.cpp loads a .gguf LoRA file)")
    return problems


def serve(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="A .gguf file for llamacpp; a path or Hugging Face id for vllm.")],
    engine: Annotated[LocalEngine, typer.Option(help="Inference engine to run.")] = LocalEngine.llamacpp,
    host: Annotated[str, typer.Option(help="Listen address; 0.0.0.0 to serve the network (set API keys).")] = (
        "127.0.0.1"),
    port: Annotated[int, typer.Option(help="Listen port.")] = 8080,
    api_keys_file: Annotated[Path | None, typer.Option(
        help="File of `key-id:secret` lines; the OpenAI routes then need `Authorization: Bearer <secret>`.")] = None,
    lora: Annotated[list[str] | None, typer.Option(
        metavar="NAME=PATH", help="A LoRA adapter served on the model as NAME (a .gguf LoRA file for llamacpp, a "
        "PEFT folder for vllm, or hf://owner/repo@<commit>[/file.gguf]); repeat for more.")] = None,
) -> None:
    """Serve a model locally: SageMaker (/invocations), Vertex (/predict) and OpenAI (/v1/...) routes on one port.

    Extra options go to the adapter as they are, e.g. `--max-tokens-cap 1024 --log-prompts true`
    (`selfhost-adapter --help` lists them).
    """
    if engine is LocalEngine.llamacpp and not Path(model).is_file():
        typer.echo(f"error: {model}: no such file (llama.cpp serves one .gguf file)", err=True)
        raise typer.Exit(1)
    loras = lora or []
    problems = lora_problems(engine, loras)
    if problems:
        typer.echo("\n".join(f"error: {problem}" for problem in problems), err=True)
        raise typer.Exit(1)
    adapter = adapter_command()
    if adapter is None:
        typer.echo(f"error: {ADAPTER} is not installed; `make venv` installs it (or pip install containers/adapter)",
                   err=True)
        raise typer.Exit(1)
    argv = adapter_argv(adapter, engine, model, host, port, api_keys_file, list(ctx.args), loras)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(adapter, argv)
