"""How fast is a cost preview, against what it cannot avoid, and how does it grow with the stack?

Run on demand: `.venv/bin/python benchmarks/preview_speed.py [--old-tree PATH] [--repeats 5] [--json] [--check]`.

1. The floor. A fresh interpreter that imports exactly the modules holding the resource classes the shipped stacks
   declare (the `type` of every resource in `selfhost preview --all --json`: our own `selfhost:` components are
   skipped, provider resources `pulumi:providers:<pkg>` are kept) and nothing else. No Pulumi program declaring
   these resources can start faster, so it is the bar `selfhost cost --all` is held to (target: at most 1.5x).
   Each token is mapped to its module by rule (`class_for`) and the mapping is then checked, untimed, in a
   separate interpreter against the class's own `pulumi_type`; a token no rule maps is printed and the benchmark
   fails, so the floor never silently leaves a class out.
   The floor gets the same process treatment as the CLI's run (`CLI_PROCESS_PROLOGUE` / `_EPILOGUE`): the
   collector off from the start and `os._exit(0)` after flushing. Without it the floor would pay garbage
   collection and interpreter shutdown (thousands of SDK classes torn down) that the CLI does not, and it would
   not be a floor.
2. Alternation. Floor, `selfhost cost --all --format json`, and with `--old-tree` the old checkout's CLI on this
   same interpreter and packages, are run in turn, round after round, from this one process: a burst of load from
   anything else on the machine falls on all of them alike instead of on whichever ran during it. One untimed round
   first fills the page cache (and compiles the old tree's bytecode if it has none). The figures are medians,
   which one preempted run does not move, and the ratios are ratios of medians.
3. Scaling. Synthetic projects with N targets of one kind (N = 1, 10, 50, 200), each the one target of a shipped
   stack replicated as t0..tN-1. They are previewed and priced (`run_preview` + `price_preview`, what
   `selfhost cost` does per stack) in a warm process per tree, started afresh each round, which previews N=1 of
   every kind once, untimed, first: the imports are paid there, outside the measurement, instead of being charged
   to the smallest size (where they would pass for a high fixed cost and hide how the per-resource cost grows).
   The measurements of the two trees alternate one by one, for the same reason as above. Every measurement starts
   after an untimed `gc.collect()`, so it never pays for the garbage of the one before; during it the collector is
   off (`--gc off`, the default: the CLI's treatment) or on (`--gc on`, to see what the collector's passes over an
   ever larger heap add as the stack grows).

How to read it: "ms per resource" is a size's median wall-clock time over its resource count. Flat (within 25%
from 10 to 200 targets) means the cost grows linearly with the stack; a figure rising with N is non-linear growth.
The marginal cost, (t_200 - t_10) / (r_200 - r_10), is what one more resource adds, every fixed cost cancelled out;
the segment figures (1 to 10, 10 to 50, 50 to 200) show where any growth sets in. With `--old-tree`, the new/old
ratio of the marginal cost is the speed-up (target: at most 0.5). The "cpu" figure beside each size is the same
from the process's CPU time, which other processes' load moves less: on a shared machine, when the wall-clock
figures jump about, it is the steadier one to read, and more `--repeats` are the cure. `--check` exits 1 when any
target is missed.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SELFHOST = str(Path(PYTHON).with_name("selfhost"))
COST_ARGS = ["cost", "--all", "--format", "json"]

# The CLI's process treatment (selfhost/cli.py): the cyclic collector off before anything is imported, and a hard
# exit once the output is flushed, so a run pays neither collections nor the interpreter's teardown. The floor is
# wrapped in exactly these lines: if the CLI's treatment changes, change them with it, or the ratio compares
# unlike things.
CLI_PROCESS_PROLOGUE = "import gc\ngc.disable()\n"
CLI_PROCESS_EPILOGUE = "import os, sys\nsys.stdout.flush()\nsys.stderr.flush()\nos._exit(0)\n"

COST_TARGET = 1.5  # `selfhost cost --all` at most this many times the floor
FLAT_TOLERANCE = 0.25  # ms per resource from FLAT_FROM targets up: the largest at most 25% above the smallest
FLAT_FROM = 10  # below this, the stack's shared resources (network, keys) dominate: not a per-resource figure
SPEEDUP_TARGET = 0.5  # new marginal ms per resource at most this fraction of the old tree's
DEFAULT_SIZES = (1, 10, 50, 200)
DEFAULT_TIMEOUT_S = 1800.0  # per subprocess run or per scaling measurement: a hang fails, it never blocks

# The kinds cheap to synthesize: the shipped stack whose (first) target of that kind is replicated.
KIND_STACKS = {"sagemaker": "aws-dev", "vertex": "gcp-prod", "kubernetes": "onprem", "aws-pool": "aws-pool",
               "gcp-pool": "gcp-pool", "hf-endpoint": "hf-dev"}
TARGETS_KEY = "selfhost-llm:targets"
BUDGET_KEY = "selfhost-llm:budget"
# Keys that name targets: a replicated stack drops them (the router's `order` lists the shipped target names).
TARGET_REFERENCES = ("selfhost-llm:router",)

# API groups pulumi-kubernetes 4.x ships classes for (pulumi_kubernetes/__init__.py's resource modules); the
# Python subpackage is the group's first label (`rbac.authorization.k8s.io` -> `rbac`). Any other group is a
# custom resource (KEDA, the Prometheus Operator), declared with `apiextensions.CustomResource`.
K8S_BUILTIN_GROUPS = frozenset({
    "core", "apps", "autoscaling", "batch", "extensions", "kustomize", "meta", "policy", "yaml", "helm.sh",
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "auditregistration.k8s.io",
    "certificates.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
    "lifecycle.k8s.io", "networking.k8s.io", "node.k8s.io", "rbac.authorization.k8s.io", "resource.k8s.io",
    "scheduling.k8s.io", "settings.k8s.io", "storage.k8s.io", "storagemigration.k8s.io",
})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VERSION = re.compile(r"v\d+((alpha|beta)\d+)?")


# -- The floor: type tokens to classes ---------------------------------------------------------------------------

class UnmappedToken(ValueError):
    """A type token no rule maps to a Python class."""


@dataclass(frozen=True, order=True)
class ClassRef:
    module: str
    name: str
    token: str | None
    """The token the class declares as its `pulumi_type`; None for a generic class that takes any token (the
    Kubernetes CustomResource, Pulumi's dynamic Resource)."""


def python_package(pkg: str) -> str:
    """The Python package of a Pulumi package: `docker-build` -> `pulumi_docker_build`."""
    name = "pulumi_" + pkg.replace("-", "_")
    if not _IDENT.fullmatch(name):
        raise UnmappedToken(pkg)
    return name


def class_for(token: str) -> ClassRef | None:
    """The class a resource of type `token` is declared with; None for our own components (`selfhost:`), which are
    the program's cost, not the floor's. Raises UnmappedToken when no rule applies."""
    parts = token.split(":")
    if len(parts) != 3 or not all(parts):
        raise UnmappedToken(token)
    pkg, module, name = parts
    if pkg == "selfhost":
        return None
    if pkg == "pulumi":
        if module == "providers":  # pulumi:providers:kubernetes: the explicit provider, the package's Provider
            return ClassRef(python_package(name), "Provider", token)
        raise UnmappedToken(token)
    if pkg == "pulumi-python" and module.split("/")[0] == "dynamic":
        return ClassRef("pulumi.dynamic", "Resource", None)  # any dynamic resource: pulumi-python:dynamic/<mod>:<Name>
    if not _IDENT.fullmatch(name):
        raise UnmappedToken(token)
    if pkg == "kubernetes":
        return _kubernetes_class(token, module, name)
    head = module.split("/")[0]  # aws:sagemaker/endpoint:Endpoint -> sagemaker; random:index/randomPassword -> index
    if not _IDENT.fullmatch(head):
        raise UnmappedToken(token)
    root = python_package(pkg)
    return ClassRef(root if head == "index" else f"{root}.{head}", name, token)


def _kubernetes_class(token: str, module: str, name: str) -> ClassRef:
    group, _, version = module.partition("/")  # apps/v1, networking.k8s.io/v1, keda.sh/v1alpha1, helm.sh/v3
    if not _VERSION.fullmatch(version):
        raise UnmappedToken(token)
    if group in K8S_BUILTIN_GROUPS:
        return ClassRef(f"pulumi_kubernetes.{group.split('.')[0]}.{version}", name, token)
    if "." in group:  # a CRD's group is always a domain
        return ClassRef("pulumi_kubernetes.apiextensions", "CustomResource", None)
    raise UnmappedToken(token)


def floor_classes(tokens: Iterable[str]) -> tuple[list[ClassRef], list[str]]:
    """The distinct classes the tokens map to, and the tokens that map to none (to be reported, never skipped)."""
    refs: set[ClassRef] = set()
    unmapped: list[str] = []
    for token in sorted(set(tokens)):
        try:
            ref = class_for(token)
        except UnmappedToken:
            unmapped.append(token)
            continue
        if ref is not None:
            refs.add(ref)
    return sorted(refs), unmapped


def with_cli_treatment(body: str) -> str:
    """A script body wrapped in the CLI's process treatment."""
    return CLI_PROCESS_PROLOGUE + body + CLI_PROCESS_EPILOGUE


def floor_source(refs: Sequence[ClassRef]) -> str:
    """The floor program: the imports of the classes, one statement per module, inside the CLI's treatment."""
    by_module: dict[str, set[str]] = {}
    for ref in refs:
        by_module.setdefault(ref.module, set()).add(ref.name)
    # A name imported from two modules (aws appautoscaling and autoscaling both have Policy) is simply rebound.
    body = "".join(f"from {m} import {', '.join(sorted(names))}\n" for m, names in sorted(by_module.items()))
    return with_cli_treatment(body)


# The untimed check that every mapped class exists and is the one the token names.
_VERIFY = """
import importlib, json, sys
import pulumi
bad = []
for module, name, token in json.loads(sys.argv[1]):
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        bad.append(f"{module}.{name}: {exc}")
        continue
    if token is None:
        if not (isinstance(cls, type) and issubclass(cls, pulumi.Resource)):
            bad.append(f"{module}.{name}: not a pulumi.Resource")
    elif getattr(cls, "pulumi_type", None) != token:
        bad.append(f"{module}.{name}: declares {getattr(cls, 'pulumi_type', None)!r}, not {token!r}")
print(json.dumps(bad))
"""


def verify_floor(refs: Sequence[ClassRef], timeout: float) -> list[str]:
    """The problems with the mapping (empty: every class exists and declares its token)."""
    arg = json.dumps([[r.module, r.name, r.token] for r in refs])
    done = subprocess.run([PYTHON, "-c", _VERIFY, arg], cwd=ROOT, check=True, capture_output=True, text=True,
                          timeout=timeout)
    return list(json.loads(done.stdout))


def declared_tokens(timeout: float) -> list[str]:
    """Every resource type in the shipped stacks' previewed graphs."""
    done = subprocess.run([SELFHOST, "preview", "--all", "--json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"selfhost preview --all --json failed ({done.returncode}):\n{done.stderr[-2000:]}")
    graphs = json.loads(done.stdout)
    return sorted({r["type"] for s in graphs["stacks"] for r in s["resources"]})


# -- Alternating runs ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    label: str
    argv: list[str]
    cwd: Path


def tree_cli(tree: Path, args: Sequence[str]) -> list[str]:
    """The CLI of another checkout on this interpreter and its packages: the tree first on sys.path, so its
    `selfhost` and `components` shadow the editable install's."""
    code = (f"import sys; sys.path.insert(0, {str(tree)!r}); from selfhost.cli import main; "
            f"sys.argv = ['selfhost', *{list(args)!r}]; main()")
    return [PYTHON, "-c", code]


def tree_identity(tree: Path, timeout: float) -> dict[str, str]:
    """Where `selfhost` and `components` come from when launched as `tree_cli` launches them."""
    code = (f"import sys, json; sys.path.insert(0, {str(tree)!r}); import selfhost, components; "
            "print(json.dumps({'selfhost': selfhost.__file__, 'components': components.__file__}))")
    done = subprocess.run([PYTHON, "-c", code], cwd=tree, check=True, capture_output=True, text=True, timeout=timeout)
    found: dict[str, str] = json.loads(done.stdout)
    for pkg, path in found.items():
        if not Path(path).resolve().is_relative_to(tree.resolve()):
            raise SystemExit(f"--old-tree {tree}: `{pkg}` imports from {path}, not from the old tree")
    return found


def run_once(cmd: Command, timeout: float) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd.argv, cwd=cmd.cwd, capture_output=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{cmd.label} failed ({done.returncode}):\n{done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def alternate(cmds: Sequence[Command], repeats: int, timeout: float) -> dict[str, list[float]]:
    """Each command once per round, rounds one after another, after one untimed round."""
    for cmd in cmds:
        run_once(cmd, timeout)
    runs: dict[str, list[float]] = {c.label: [] for c in cmds}
    for _ in range(repeats):
        for cmd in cmds:
            runs[cmd.label].append(run_once(cmd, timeout))
    return runs


# -- Scaling: synthetic stacks ---------------------------------------------------------------------------------------

def replicate(config: dict[str, Any], kind: str, n: int) -> dict[str, Any]:
    """A stack's config with its (first) target of `kind` as targets t0..t{n-1}, and nothing else that depends on
    the target count failing: the budget raised well above what n targets cost, fields that must be unique per
    target (an ingress host) made so, keys that name the shipped targets (the router) dropped."""
    protos = [t for t in config.get(TARGETS_KEY) or [] if t.get("kind") == kind]
    if not protos:
        raise ValueError(f"no {kind} target to replicate")
    out = {k: copy.deepcopy(v) for k, v in config.items() if k not in TARGET_REFERENCES}
    targets = []
    for i in range(n):
        t = copy.deepcopy(protos[0])
        t["name"] = f"t{i}"
        if isinstance(t.get("ingress"), dict) and "host" in t["ingress"]:
            t["ingress"]["host"] = f"t{i}.{t['ingress']['host']}"
        targets.append(t)
    out[TARGETS_KEY] = targets
    budget = dict(out.get(BUDGET_KEY) or {})
    if "monthlyUsd" in budget:
        # A budget check failing would end the run, not measure it: this stays above any n targets' cost.
        budget["monthlyUsd"] = float(budget["monthlyUsd"]) * n * 100
        out[BUDGET_KEY] = budget
    return out


def flatness(ms_per_resource: dict[int, float]) -> tuple[float | None, bool | None]:
    """The spread (largest over smallest, minus 1) of ms per resource from FLAT_FROM targets up, and whether it is
    within FLAT_TOLERANCE; (None, None) with fewer than two such sizes."""
    values = [v for n, v in ms_per_resource.items() if n >= FLAT_FROM]
    if len(values) < 2:
        return None, None
    spread = max(values) / min(values) - 1
    return spread, spread <= FLAT_TOLERANCE


def marginal_ms(points: dict[int, tuple[int, float]], lo: int, hi: int) -> float | None:
    """ms per resource added between two sizes, from {n: (resources, seconds)}."""
    (r_lo, t_lo), (r_hi, t_hi) = points[lo], points[hi]
    return (t_hi - t_lo) / (r_hi - r_lo) * 1000 if r_hi != r_lo else None


def marginal_span(sizes: Iterable[int]) -> tuple[int, int] | None:
    """The sizes the headline marginal is taken between: the smallest from FLAT_FROM up (or the smallest) and the
    largest."""
    ordered = sorted(set(sizes))
    if len(ordered) < 2:
        return None
    big = [n for n in ordered if n >= FLAT_FROM]
    lo = big[0] if len(big) >= 2 else ordered[0]
    return lo, ordered[-1]


def summarize_kind(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-size medians, ms per resource, the marginal costs and the flatness check of one kind's measurements."""
    sizes = sorted({r["n"] for r in rows})
    points: dict[int, tuple[int, float]] = {}
    table = []
    for n in sizes:
        mine = [r for r in rows if r["n"] == n]
        seconds = statistics.median(r["seconds"] for r in mine)
        resources = mine[0]["resources"]
        points[n] = (resources, seconds)
        cpu = [r["cpu_seconds"] for r in mine if "cpu_seconds" in r]
        table.append({"targets": n, "resources": resources, "seconds": seconds, "runs": [r["seconds"] for r in mine],
                      "ms_per_resource": seconds / resources * 1000,
                      "cpu_ms_per_resource": statistics.median(cpu) / resources * 1000 if cpu else None})
    spread, flat = flatness({row["targets"]: row["ms_per_resource"] for row in table})
    span = marginal_span(sizes)
    return {
        "sizes": table,
        "marginal_span": list(span) if span else None,
        "marginal_ms_per_resource": marginal_ms(points, *span) if span else None,
        "segments": [{"from": a, "to": b, "marginal_ms_per_resource": marginal_ms(points, a, b)}
                     for a, b in zip(sizes, sizes[1:], strict=False)],
        "flat_spread": spread,
        "flat": flat,
    }


# -- Scaling: the warm worker, one per tree ----------------------------------------------------------------------------

def apply_gc_treatment(mode: str) -> None:
    """`off`: the CLI's treatment (CLI_PROCESS_PROLOGUE); `on`: the interpreter's default."""
    if mode == "off":
        gc.disable()
    else:
        gc.enable()


def worker(tree: Path, gc_mode: str) -> None:
    """Serve measurement requests, one JSON line in (stdin), one JSON line out. The protocol has fd 1 to itself:
    anything else that prints (the program, the SDK) goes to stderr."""
    apply_gc_treatment(gc_mode)  # before the imports, as the CLI does
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path.insert(0, str(tree))
    import yaml

    import components
    import selfhost
    from components.catalog.pricing import lookup
    from selfhost.cost_report import price_preview
    from selfhost.preview import run_preview
    from selfhost.project import Project, load_project

    proto.write(json.dumps({"selfhost": selfhost.__file__, "components": components.__file__}) + "\n")
    projects: dict[str, Project] = {}

    def measure(kind: str, n: int) -> dict[str, Any]:
        gc.collect()  # untimed: the previous measurement's garbage is not this one's cost
        start, cpu = time.perf_counter(), time.process_time()
        graph = run_preview(projects[kind], f"n{n}").to_json()
        estimate = price_preview(graph, lookup)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        return {"kind": kind, "n": n, "seconds": seconds, "cpu_seconds": cpu, "resources": len(graph["resources"]),
                "expected_usd": estimate.total()[1]}

    with tempfile.TemporaryDirectory(prefix="preview-speed-") as tmp:
        for line in sys.stdin:
            req = json.loads(line)
            if req["op"] == "prepare":  # write the kind's stacks, then pay its imports once, untimed
                kind, stack = req["kind"], KIND_STACKS[req["kind"]]
                project_dir = Path(tmp) / kind
                (project_dir / "stacks").mkdir(parents=True)
                shutil.copy(tree / "Pulumi.yaml", project_dir)
                shutil.copy(tree / "__main__.py", project_dir)
                shipped = yaml.safe_load((tree / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
                for n in {1, *req["sizes"]}:
                    doc = {"config": replicate(shipped, kind, n)}
                    (project_dir / "stacks" / f"Pulumi.n{n}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
                projects[kind] = load_project(project_dir)
                proto.write(json.dumps(measure(kind, 1)) + "\n")
            elif req["op"] == "measure":
                proto.write(json.dumps(measure(req["kind"], req["n"])) + "\n")
            else:
                break
    proto.flush()
    os._exit(0)  # the SDK's threads and event loops need no teardown


class Worker:
    """A warm scaling worker on one tree, driven request by request."""

    def __init__(self, label: str, tree: Path, gc_mode: str, timeout: float) -> None:
        self.label, self.timeout = label, timeout
        self.log: IO[bytes] = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([PYTHON, str(Path(__file__).resolve()), "--worker", str(tree), "--gc", gc_mode],
                                     cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True)
        self.identity: dict[str, str] = self._read()
        for pkg, path in self.identity.items():
            if not Path(path).resolve().is_relative_to(tree.resolve()):
                self.close()
                raise SystemExit(f"{label} worker: `{pkg}` imports from {path}, not from {tree}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-3000:]
            raise SystemExit(f"{self.label} worker: {'timed out' if not ready else 'died'}:\n{tail}")
        result: dict[str, Any] = json.loads(line)
        return result

    def request(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def scaling(trees: dict[str, Path], kinds: Sequence[str], sizes: Sequence[int], repeats: int,
            gc_modes: dict[str, str], timeout: float) -> dict[str, Any]:
    """Every tree's measurements, alternating between the trees measurement by measurement; each tree's worker
    runs with its own collector treatment (`gc_modes[label]`). Each round starts fresh workers: whatever a process
    accumulates from one declaration to the next (a tree before f9455a4 nests one more pickler wrapper per dynamic
    resource, and fails past about 1,000) then grows over one round's previews, about what one stack of the largest
    size brings to a CLI run, and not over the whole benchmark."""
    rows: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    identity: dict[str, dict[str, str]] = {}
    for r in range(repeats):
        progress(f"scaling: round {r + 1} of {repeats}")
        workers = {label: Worker(label, tree, gc_modes[label], timeout) for label, tree in trees.items()}
        try:
            for kind in kinds:
                for w in workers.values():
                    w.request(op="prepare", kind=kind, sizes=list(sizes))
            for kind in kinds:
                for n in sizes:
                    for label, w in workers.items():
                        rows[label].append(w.request(op="measure", kind=kind, n=n))
        finally:
            for w in workers.values():
                w.close()
        identity = {label: w.identity for label, w in workers.items()}
    return {label: {"identity": identity[label],
                    "kinds": {k: summarize_kind([x for x in rows[label] if x["kind"] == k]) for k in kinds}}
            for label in trees}


# -- Report --------------------------------------------------------------------------------------------------------

def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def print_report(doc: dict[str, Any]) -> None:
    floor, alt = doc["floor"], doc["alternation"]
    med = alt["median_s"]
    print(f"floor: {len(floor['classes'])} classes in {len(floor['modules'])} modules, from "
          f"{floor['tokens']} type tokens ({floor['ours']} ours, skipped)")
    print(f"alternation, median of {alt['repeats']} (after one untimed round):")
    for label, seconds in med.items():
        print(f"  {label:<12} {seconds:6.2f} s   runs: {' '.join(f'{s:.2f}' for s in alt['runs'][label])}")
    ok = "pass" if alt["cost_within_target"] else "FAIL"
    print(f"  cost --all / floor: {alt['cost_over_floor']:.2f}x (target <= {COST_TARGET}x): {ok}")
    if "old_over_new" in alt:
        print(f"  old cost --all / new: {alt['old_over_new']:.2f}x")
    sc = doc["scaling"]
    print(f"scaling: median of {sc['repeats']}, a warm process per tree and round, gc {sc['gc']}")
    for label, tree in sc["trees"].items():
        print(f"  [{label}] selfhost: {tree['identity']['selfhost']}")
        for kind, s in tree["kinds"].items():
            print(f"  [{label}] {kind}")
            for row in s["sizes"]:
                print(f"    {row['targets']:>4} targets {row['resources']:>6} resources {row['seconds']:8.3f} s "
                      f"{row['ms_per_resource']:7.2f} ms/resource  (cpu {fmt_ms(row['cpu_ms_per_resource'])})")
            segs = ", ".join(f"{g['from']}->{g['to']}: {fmt_ms(g['marginal_ms_per_resource'])}"
                             for g in s["segments"])
            print(f"    marginal ms/resource {fmt_span(s)}: {fmt_ms(s['marginal_ms_per_resource'])} ({segs})")
            flat = "n/a" if s["flat"] is None else ("pass" if s["flat"] else "FAIL")
            spread = "n/a" if s["flat_spread"] is None else f"{s['flat_spread']:.0%}"
            print(f"    flat from {FLAT_FROM} targets: spread {spread} (<= {FLAT_TOLERANCE:.0%}): {flat}")
    for kind, r in sc.get("new_over_old_marginal", {}).items():
        verdict = "n/a" if r is None else ("pass" if r <= SPEEDUP_TARGET else "FAIL")
        print(f"  {kind}: new/old marginal ms per resource {fmt_ratio(r)} (target <= {SPEEDUP_TARGET}): {verdict}")
    failed = [name for name, ok in doc["checks"].items() if ok is False]
    print("checks: " + ("all pass" if not failed else "FAIL " + ", ".join(failed)))


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_span(s: dict[str, Any]) -> str:
    return f"{s['marginal_span'][0]}->{s['marginal_span'][1]}" if s["marginal_span"] else ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per command and per size (default 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="targets per stack")
    parser.add_argument("--kinds", nargs="+", choices=sorted(KIND_STACKS), default=list(KIND_STACKS))
    parser.add_argument("--old-tree", type=Path, help="another checkout of the project, timed alongside this one")
    parser.add_argument("--gc", choices=("off", "on"), default="off", help="collector during scaling runs")
    # The tree before the collector was turned off ran with it on: measure it as it ran, unless told otherwise.
    parser.add_argument("--old-gc", choices=("off", "on"), default="on",
                        help="collector during the old tree's scaling runs (default on: as a CLI before it ran)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds, per run")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker.resolve(), args.gc)
        return 0
    if args.repeats < 1 or any(n < 1 for n in args.sizes):
        parser.error("--repeats and --sizes must be positive")
    sizes = sorted(set(args.sizes))
    old = args.old_tree.resolve() if args.old_tree else None
    if old is not None and not (old / "selfhost" / "cli.py").is_file():
        parser.error(f"--old-tree {old}: no selfhost/cli.py there")

    progress("floor: previewing the shipped stacks for their type tokens")
    tokens = declared_tokens(args.timeout)
    refs, unmapped = floor_classes(tokens)
    if unmapped:
        print("type tokens no rule maps to a class (fix class_for):", *unmapped, sep="\n  ", file=sys.stderr)
        return 2
    problems = verify_floor(refs, args.timeout)
    if problems:
        print("floor classes that do not match their token:", *problems, sep="\n  ", file=sys.stderr)
        return 2
    source = floor_source(refs)

    cmds = [Command("floor", [PYTHON, "-c", source], ROOT), Command("cost --all", [SELFHOST, *COST_ARGS], ROOT)]
    identity = None
    if old is not None:
        identity = tree_identity(old, args.timeout)
        progress(f"old tree: selfhost {identity['selfhost']}, components {identity['components']}")
        cmds.append(Command("old cost", tree_cli(old, COST_ARGS), old))
    progress(f"alternation: {' / '.join(c.label for c in cmds)}, {args.repeats} rounds after one untimed")
    runs = alternate(cmds, args.repeats, args.timeout)
    med = {label: statistics.median(r) for label, r in runs.items()}
    alt: dict[str, Any] = {"repeats": args.repeats, "runs": runs, "median_s": med,
                           "cost_over_floor": med["cost --all"] / med["floor"]}
    alt["cost_within_target"] = alt["cost_over_floor"] <= COST_TARGET
    if old is not None:
        alt["old_over_new"] = med["old cost"] / med["cost --all"]
        alt["old_identity"] = identity

    trees = {"new": ROOT, **({"old": old} if old is not None else {})}
    gc_modes = {"new": args.gc, "old": args.old_gc}
    progress(f"scaling: kinds {', '.join(args.kinds)}; sizes {sizes}; gc new {args.gc}, old {args.old_gc}")
    sc: dict[str, Any] = {"repeats": args.repeats, "gc": {label: gc_modes[label] for label in trees}, "sizes": sizes,
                          "trees": scaling(trees, args.kinds, sizes, args.repeats, gc_modes, args.timeout)}
    checks: dict[str, bool | None] = {"cost_over_floor": alt["cost_within_target"]}
    for kind, s in sc["trees"]["new"]["kinds"].items():
        checks[f"flat:{kind}"] = s["flat"]
    if old is not None:
        sc["new_over_old_marginal"] = {
            kind: ratio(s["marginal_ms_per_resource"], sc["trees"]["old"]["kinds"][kind]["marginal_ms_per_resource"])
            for kind, s in sc["trees"]["new"]["kinds"].items()}
        for kind, r in sc["new_over_old_marginal"].items():
            checks[f"speedup:{kind}"] = None if r is None else r <= SPEEDUP_TARGET

    doc = {"floor": {"tokens": len(tokens), "ours": sum(t.startswith("selfhost:") for t in tokens),
                     "classes": [f"{r.module}.{r.name}" for r in refs],
                     "modules": sorted({r.module for r in refs}), "source": source},
           "alternation": alt, "scaling": sc, "checks": checks}
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        print_report(doc)
    return 1 if args.check and any(ok is False for ok in checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
