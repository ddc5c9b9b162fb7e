"""The `edge` stack's pod, run for real: its init container's command fetches the GGUF file from a local stand-in
for the Hub, and its serving container's arguments, given to `selfhost serve`, answer OpenAI chat on a tiny model.

Only what cannot exist here is substituted: the Hub (HF_ENDPOINT, a local server), the volumes (directories), the
file's hash (the tiny model's own) and the port."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from .conftest import KEYS, start_adapter, stop_process

BIN = Path(sys.executable).parent


def pod(previews) -> dict:
    (deployment,) = [r for r in previews["edge"].resources if r.type == "kubernetes:apps/v1:Deployment"]
    return deployment.inputs["spec"]["template"]["spec"]


@pytest.mark.slow
def test_the_rendered_edge_pod_fetches_its_model_and_answers_chat(previews, tiny_model: Path, tmp_path: Path):
    spec = pod(previews)
    (init,) = spec["initContainers"]
    (serving,) = spec["containers"]
    mounts = {m["name"]: m["mountPath"] for m in serving["volumeMounts"]}
    cache, secrets = tmp_path / "cache", tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api_keys").write_text("".join(f"{k}:{v}\n" for k, v in KEYS.items()))

    def local(arg: str) -> str:
        for volume, path in (("cache", cache), ("secrets", secrets)):
            arg = arg.replace(mounts[volume], str(path))
        return arg

    data = tiny_model.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    served: list[str] = []

    class Hub(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    hub = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    try:
        # The init container: its program from the image's venv is the one installed here.
        args = [local(a) for a in init["args"]]
        args[args.index("--sha256") + 1] = digest
        env = {"PATH": str(BIN), "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_port}",
               **{v["name"]: local(v["value"]) for v in init["env"]}}
        env["HOME"] = str(tmp_path)
        fetched = subprocess.run([str(BIN / Path(init["command"][0]).name), *args], env=env, capture_output=True,
                                 text=True, timeout=60, check=True).stdout.strip()
        i = args.index
        assert served == [f"/{args[i('--repo') + 1]}/resolve/{args[i('--revision') + 1]}/{args[i('--file') + 1]}"]
        model_arg = local(serving["args"][serving["args"].index("--model") + 1])
        assert fetched == model_arg and Path(fetched).read_bytes() == data
    finally:
        hub.shutdown()

    # The serving container's arguments, to `selfhost serve` (which runs the same adapter; "openai", the image's
    # contract, becomes serve's "all"). start_adapter appends --host 127.0.0.1 and a free --port: the last wins.
    argv = [local(a) for a in serving["args"][1:]]
    running = start_adapter(tmp_path / "run", "serve", *argv, command=[str(BIN / "selfhost")])
    try:
        assert httpx.get(running.url + "/livez", timeout=5).status_code == 200
        body = {"model": "qwen-1-5b", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}
        key = {"authorization": f"Bearer {KEYS['team-a']}"}
        r = httpx.post(running.url + "/v1/chat/completions", json=body, headers=key, timeout=60)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["model"] == "Qwen/Qwen2.5-1.5B-Instruct-GGUF" and answer["usage"]["completion_tokens"] >= 1
        assert httpx.post(running.url + "/v1/chat/completions", json=body, timeout=10).status_code == 401
    finally:
        stop_process(running.proc)
    assert running.proc.returncode == -signal.SIGTERM
