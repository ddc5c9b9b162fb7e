"""How fast is a cost preview? Run on demand: `.venv/bin/python benchmarks/preview_speed.py`.

1. `selfhost cost --all` against the floor: a fresh interpreter importing pulumi and the three provider SDKs
   (what any Pulumi Python program pays before declaring anything). Runs alternate, in one process tree, so
   both see the same machine load; the figure is the ratio of medians. Target: at most 2x the floor.
   The provider SDKs load their modules lazily, so that floor leaves out the resource classes a program
   actually declares; a second floor imports exactly those (the types in the stacks' previewed graphs), the
   cost no Pulumi program declaring these resources can avoid.
2. Scaling: a synthetic environment with 10, 100 and 1000 model deployments (Vertex AI targets), previewed
   and priced in-process; time per deployment should stay flat (linear growth).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SELFHOST = str(Path(sys.executable).with_name("selfhost"))
FLOOR = [sys.executable, "-c", "import pulumi, pulumi_aws, pulumi_gcp, pulumi_kubernetes"]
COST_ALL = [SELFHOST, "cost", "--all", "--format", "json"]


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def used_classes_floor() -> list[str]:
    """A command importing every resource class the stacks declare (from the previewed graphs' type tokens)."""
    graphs = json.loads(subprocess.run([SELFHOST, "preview", "--all", "--json"], cwd=ROOT, check=True,
                                       capture_output=True, text=True).stdout)
    lines = ["import pulumi"]
    for token in sorted({r["type"] for s in graphs["stacks"] for r in s["resources"] if r["custom"]}):
        pkg, module, name = token.split(":")
        mod = f"pulumi_{pkg}" + (f".{module.split('/')[0]}" if module != "index" else "")
        lines.append(f"from {mod} import {name}")
    return [sys.executable, "-c", "\n".join(lines)]


def floor_ratio(repeats: int) -> dict:
    used = used_classes_floor()
    floor, used_floor, cost = [], [], []
    for _ in range(repeats):
        floor.append(timed(FLOOR, ROOT))
        used_floor.append(timed(used, ROOT))
        cost.append(timed(COST_ALL, ROOT))
    f, u, c = statistics.median(floor), statistics.median(used_floor), statistics.median(cost)
    return {"floor_s": f, "used_classes_floor_s": u, "cost_all_s": c, "ratio": c / f, "ratio_used": c / u,
            "repeats": repeats, "floor_runs": floor, "used_floor_runs": used_floor, "cost_runs": cost}


def synthetic_project(tmp: Path, deployments: int) -> Path:
    project = tmp / f"n{deployments}"
    (project / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", project)
    shutil.copy(ROOT / "__main__.py", project)
    (project / "components").symlink_to(ROOT / "components")
    config = {
        "gcp:project": "bench-llm-project",
        "gcp:region": "us-central1",
        "selfhost-llm:models": [{"name": "qwen", "id": "Qwen/Qwen2.5-7B-Instruct", "maxContext": 8192,
                                 "revision": "a09a35458c702b33eeacc393d103063234e8bc28"}],
        "selfhost-llm:targets": [{"kind": "vertex", "name": f"t{i}", "model": "qwen", "machineType": "g2-standard-12",
                                  "acceleratorType": "NVIDIA_L4"} for i in range(deployments)],
    }
    (project / "stacks" / "Pulumi.bench.yaml").write_text(yaml.safe_dump({"config": config}))
    return project


def scaling(sizes: list[int]) -> list[dict]:
    from components.catalog.pricing import lookup
    from selfhost.cost_report import price_preview
    from selfhost.preview import run_preview
    from selfhost.project import load_project

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            project = load_project(synthetic_project(Path(tmp), n))
            start = time.perf_counter()
            graph = run_preview(project, "bench").to_json()
            est = price_preview(graph, lookup)
            elapsed = time.perf_counter() - start
            rows.append({"deployments": n, "resources": len(graph["resources"]), "seconds": elapsed,
                         "ms_per_deployment": elapsed / n * 1000, "expected_usd": est.total()[1]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    ratio = floor_ratio(args.repeats)
    print(f"floor (import pulumi + aws + gcp + kubernetes): {ratio['floor_s']:.2f} s median of {args.repeats}")
    print(f"floor (import the resource classes declared):  {ratio['used_classes_floor_s']:.2f} s "
          f"median of {args.repeats}")
    print(f"selfhost cost --all:                            {ratio['cost_all_s']:.2f} s median of {args.repeats}")
    print(f"ratio: {ratio['ratio']:.2f}x the import floor (target <= 2x); "
          f"{ratio['ratio_used']:.2f}x the declared-classes floor")
    rows = scaling(args.sizes)
    for r in rows:
        print(f"{r['deployments']:>5} deployments, {r['resources']:>5} resources: {r['seconds']:7.2f} s, "
              f"{r['ms_per_deployment']:6.1f} ms per deployment")
    print(json.dumps({"floor": ratio, "scaling": rows}, indent=2))


if __name__ == "__main__":
    main()
