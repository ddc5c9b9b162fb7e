"""What the adapter costs: the same load straight to the engine and through the adapter, in one run.

Two pairs, each measured in alternating rounds so drift hits both sides alike:
- llama.cpp (llama-cpp-python's server on the tests' tiny GGUF model), supervised by the adapter: direct to
  the engine's port vs through the adapter's port;
- the instant upstream (answers at once, no model): direct vs through the adapter, which isolates the
  adapter's own cost per request.
The load is streamed chat completions (`max_tokens` pieces each) from a closed loop of `concurrency`
clients, with an API key, as a Kubernetes client would send them. Reported per pair and concurrency: p50
and p99 latency of whole streams, the latency the adapter adds, and the throughput ratio (through / direct).
Target: at most 1 ms added at p50 and at least 0.97 of direct throughput at 32 concurrent streams.

    .venv/bin/python -m benchmarks.gateway_overhead                  # the full run, a few minutes
    .venv/bin/python -m benchmarks.gateway_overhead --requests 200 --rounds 2 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.loadgen import Result, build_request, run_load

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key-0123456789"
TARGET_ADDED_P50_MS = 1.0
TARGET_THROUGHPUT_RATIO = 0.97


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ok(url: str, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready within {timeout_seconds} s")


@dataclass
class Side:
    name: str
    port: int
    results: list[Result]

    def latencies(self) -> list[float]:
        return [x for r in self.results for x in r.latencies_s]

    def p(self, q: float) -> float:
        merged = Result(latencies_s=self.latencies())
        return merged.percentile_ms(q)

    def throughput(self) -> float:
        return sum(len(r.latencies_s) for r in self.results) / sum(r.elapsed_s for r in self.results)

    def failures(self) -> int:
        return sum(sum(r.errors.values()) + r.not_sent + sum(n for s, n in r.statuses.items() if s != 200)
                   for r in self.results)


async def measure(pair: str, direct_port: int, adapter_port: int, concurrency: int, requests: int, rounds: int,
                  max_tokens: int) -> dict:
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "Tell me a story"}],
                       "max_tokens": max_tokens, "stream": True}).encode()
    headers = {"authorization": f"Bearer {KEY}"}
    sides = [Side("direct", direct_port, []), Side("adapter", adapter_port, [])]
    raw = {s.name: build_request("127.0.0.1", s.port, "POST", "/v1/chat/completions", body, headers) for s in sides}
    for side in sides:  # warm up connections, caches and the engine
        await run_load("127.0.0.1", side.port, raw[side.name], min(requests, 4 * concurrency), concurrency)
    for i in range(rounds):
        for side in sides if i % 2 == 0 else reversed(sides):
            side.results.append(await run_load("127.0.0.1", side.port, raw[side.name], requests, concurrency,
                                               deadline_seconds=300))
    direct, via = sides
    return {
        "pair": pair, "concurrency": concurrency, "requests_per_side": requests * rounds, "max_tokens": max_tokens,
        "direct_p50_ms": direct.p(50), "direct_p99_ms": direct.p(99),
        "adapter_p50_ms": via.p(50), "adapter_p99_ms": via.p(99),
        "added_p50_ms": via.p(50) - direct.p(50), "added_p99_ms": via.p(99) - direct.p(99),
        "direct_rps": direct.throughput(), "adapter_rps": via.throughput(),
        "throughput_ratio": via.throughput() / direct.throughput(),
        "failures": direct.failures() + via.failures(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from tests.adapter.tinymodel import write_tiny_llama

    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        work = Path(tmp)
        model = write_tiny_llama(work / "tiny.gguf")
        (work / "keys").write_text(f"bench:{KEY}\n")
        ports = {name: _free_port() for name in ("engine", "adapter_llama", "upstream", "adapter_instant")}
        common = ["openai", "--host", "127.0.0.1", "--api-keys-file", str(work / "keys"),
                  "--max-concurrency-per-key", "4096", "--max-tokens-cap", "4096"]

        def start(argv: list[str], log: str) -> None:
            procs.append(subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL,
                                          stdout=(work / f"{log}.out").open("wb"),
                                          stderr=(work / f"{log}.err").open("wb")))

        try:
            start([sys.executable, "-m", "selfhost_adapter", *common, "--engine", "llamacpp", "--model", str(model),
                   "--model-name", "tiny", "--engine-port", str(ports["engine"]),
                   "--port", str(ports["adapter_llama"])], "adapter-llama")
            start([sys.executable, "-m", "benchmarks.instant_upstream", "--port", str(ports["upstream"])], "upstream")
            start([sys.executable, "-m", "selfhost_adapter", *common, "--engine", "external", "--engine-url",
                   f"http://127.0.0.1:{ports['upstream']}", "--model-name", "tiny",
                   "--port", str(ports["adapter_instant"])],
                  "adapter-instant")
            for port in (ports["adapter_llama"], ports["adapter_instant"]):
                _wait_ok(f"http://127.0.0.1:{port}/health", 120)

            rows = []
            for concurrency in args.concurrency:
                for pair, direct, via in (("llama.cpp", ports["engine"], ports["adapter_llama"]),
                                          ("instant", ports["upstream"], ports["adapter_instant"])):
                    rows.append(asyncio.run(measure(pair, direct, via, concurrency, args.requests, args.rounds,
                                                    args.max_tokens)))
                    if not args.json:
                        _print_row(rows[-1])
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGTERM)
            for proc in reversed(procs):
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    if args.json:
        print(json.dumps({"rows": rows, "target": {"added_p50_ms": TARGET_ADDED_P50_MS,
                                                   "throughput_ratio": TARGET_THROUGHPUT_RATIO}}, indent=2))


def _print_row(row: dict) -> None:
    print(f"{row['pair']:>9} c={row['concurrency']:<3} n={row['requests_per_side']:<5} "
          f"direct p50 {row['direct_p50_ms']:8.2f} ms p99 {row['direct_p99_ms']:8.2f} ms "
          f"{row['direct_rps']:8.1f} req/s | "
          f"adapter p50 {row['adapter_p50_ms']:8.2f} ms p99 {row['adapter_p99_ms']:8.2f} ms "
          f"{row['adapter_rps']:8.1f} req/s | "
          f"added p50 {row['added_p50_ms']:+7.2f} ms p99 {row['added_p99_ms']:+7.2f} ms "
          f"ratio {row['throughput_ratio']:.3f} failures {row['failures']}", flush=True)


if __name__ == "__main__":
    main()
