"""`selfhost serve`: the adapter and llama.cpp on this machine, started the way a user starts them."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from selfhost.cli import app
from selfhost.serve import LocalEngine, adapter_argv

from .conftest import auth, start_adapter, stop_process


def test_serve_builds_the_adapter_command_line() -> None:
    argv = adapter_argv("/venv/bin/selfhost-adapter", LocalEngine.llamacpp, "m.gguf", "127.0.0.1", 9000,
                        Path("/run/keys"), ["--max-tokens-cap", "512"])
    assert argv == ["/venv/bin/selfhost-adapter", "all", "--engine", "llamacpp", "--model", "m.gguf", "--host",
                    "127.0.0.1", "--port", "9000", "--api-keys-file", "/run/keys", "--max-tokens-cap", "512"]


def test_serve_refuses_a_missing_model_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "nope.gguf")])
    assert result.exit_code == 1
    assert "no such file" in result.output


@pytest.mark.slow
def test_selfhost_serve_answers_every_contract(tiny_model: Path, keys_file: Path, tmp_path: Path) -> None:
    selfhost = str(Path(sys.executable).parent / "selfhost")
    # start_adapter appends --host/--port: selfhost serve takes both and runs the adapter in its place (exec).
    running = start_adapter(tmp_path, "serve", "--engine", "llamacpp", "--model", str(tiny_model),
                            "--api-keys-file", str(keys_file), "--max-tokens-cap", "32", command=[selfhost])
    try:
        chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        r = httpx.post(running.url + "/v1/chat/completions", json=chat, headers=auth(), timeout=30)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4
        assert httpx.post(running.url + "/v1/chat/completions", json=chat).status_code == 401
        assert httpx.post(running.url + "/invocations", json=chat, timeout=30).status_code == 200
        r = httpx.post(running.url + "/predict", json={"instances": ["a", "b"], "parameters": {"max_tokens": 2}},
                       timeout=30)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 2
        r = httpx.post(running.url + "/v1/completions", json={"prompt": "x", "max_tokens": 33}, headers=auth())
        assert r.status_code == 422  # the extra option reached the adapter
    finally:
        stop_process(running.proc)
    assert running.proc.returncode == -signal.SIGTERM
