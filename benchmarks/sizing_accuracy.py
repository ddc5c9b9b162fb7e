"""How close is the throughput model to what engines were measured doing? Run on demand:
`.venv/bin/python benchmarks/sizing_accuracy.py [--json]`.

Every point of components/catalog/throughput_points.csv (published vLLM, TensorRT-LLM and NVIDIA NIM runs, each
with its source) next to what components/sizing.py predicts for the same model, GPU, weights, KV cache, request
shape and concurrency; then the median and worst error over the points the model is held to (tests/test_sizing.py
fails past 25%), by regime and GPU, and the points kept for the record but excluded, with why. A leave-one-GPU-out
check says how far the fitted factors carry: each GPU's points predicted with the factors fit without them.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components import sizing  # noqa: E402
from components.calibration import TOLERANCE, Point, error, points, predict  # noqa: E402
from components.catalog.gpus import GPUS  # noqa: E402

FACTORS = ("WEIGHT_BANDWIDTH_EFFICIENCY", "KV_BANDWIDTH_EFFICIENCY", "COMPUTE_EFFICIENCY", "FP8_COMPUTE_EFFICIENCY",
           "OVERLAP", "STEP_OVERHEAD_S", "ALL_REDUCE_LATENCY_S", "LINK_EFFICIENCY", "REQUEST_OVERHEAD_S")


def describe(p: Point) -> str:
    conc = "sat." if p.concurrency is None else str(p.concurrency)
    return (f"{p.gpu_count}x{p.gpu:<9} {p.model.split('/')[-1][:26]:26} {p.weights.split(' ')[0][:6]:6} "
            f"{p.input_tokens or '-':>5}/{p.output_tokens or '-':<5} c={conc:<5} {p.metric:17}")


def leave_one_gpu_out(used: list[Point]) -> dict[str, float]:
    """Worst error of each GPU's points with the factors refit on the other GPUs' points (scipy, when there)."""
    try:
        from scipy.optimize import minimize
    except ImportError:
        return {}
    start = [getattr(sizing, f) for f in FACTORS]

    def loss(x: list[float], fit_on: list[Point]) -> float:
        for name, v in zip(FACTORS, x, strict=True):
            setattr(sizing, name, max(v, 1e-9))
        errs = [abs(math.log(predict(p) / p.value)) for p in fit_on]
        return max(errs) + statistics.fmean(e * e for e in errs) ** 0.5

    out = {}
    try:
        for gpu in sorted({p.gpu for p in used}):
            rest = [p for p in used if p.gpu != gpu]
            fit = minimize(loss, start, args=(rest,), method="Nelder-Mead", options={"maxiter": 1500})
            loss(list(fit.x), rest)
            out[gpu] = max(abs(error(p)) for p in used if p.gpu == gpu)
    finally:
        for name, v in zip(FACTORS, start, strict=True):
            setattr(sizing, name, v)
    return out


def _checked(p: Point) -> dict[str, float]:
    """An excluded point the model can still predict (its shape is known; the TPU points, whose hardware the factors
    were not fit to): predicted against measured, shown beside the reason, not held to the tolerance."""
    if p.input_tokens is None or p.output_tokens is None or p.gpu not in GPUS:
        return {}
    try:
        return {"measured": p.value, "predicted": predict(p), "error": error(p)}
    except AssertionError:  # does not fit the point's hardware as the model sizes it
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    parser.add_argument("--no-holdout", action="store_true", help="skip the leave-one-GPU-out refits (slow)")
    args = parser.parse_args()
    every = points()
    used = [p for p in every if not p.usable]
    rows = [{"point": describe(p), "measured": p.value, "predicted": predict(p), "error": error(p),
             "regime": p.regime, "gpu": p.gpu, "source": p.source} for p in used]
    errors = [abs(r["error"]) for r in rows]
    summary = {
        "points": len(rows), "medianError": statistics.median(errors), "worstError": max(errors),
        "withinTolerance": all(e <= TOLERANCE for e in errors),
        "byRegime": {k: max(abs(r["error"]) for r in rows if r["regime"] == k)
                     for k in sorted({r["regime"] for r in rows})},
        "excluded": [{"point": describe(p), "why": p.usable, **_checked(p)} for p in every if p.usable],
    }
    holdout = {} if args.no_holdout else leave_one_gpu_out(used)
    if args.json:
        json.dump({"rows": rows, "summary": summary, "leaveOneGpuOut": holdout}, sys.stdout, indent=2)
        print()
        return
    print(f"{'point':86} {'measured':>10} {'predicted':>10} {'error':>7}")
    for r in rows:
        print(f"{r['point']:86} {r['measured']:10.2f} {r['predicted']:10.2f} {r['error'] * 100:+6.0f}%")
    print(f"\n{summary['points']} points: median error {summary['medianError'] * 100:.1f}%, worst "
          f"{summary['worstError'] * 100:.1f}% (tolerance {TOLERANCE * 100:.0f}%)")
    print("worst by regime: " + ", ".join(f"{k} {v * 100:.0f}%" for k, v in summary["byRegime"].items()))
    for e in summary["excluded"]:
        checked = (f" [predicted {e['predicted']:.2f} against {e['measured']:.2f} measured, {e['error'] * 100:+.0f}%]"
                   if "error" in e else "")
        print(f"excluded: {e['point']}: {e['why']}{checked}")
    if holdout:
        print("leave-one-GPU-out (factors refit without the GPU's points), worst error of its points: "
              + ", ".join(f"{g} {v * 100:.0f}%" for g, v in holdout.items()))


if __name__ == "__main__":
    main()
