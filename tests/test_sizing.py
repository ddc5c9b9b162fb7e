"""Pure functions: memory fit and start-up sizing against hand-computed values."""

import pytest

from components.catalog.models import MODELS
from components.sizing import (
    GIB,
    SAGEMAKER_TIMEOUT_BOUNDS_S,
    VERTEX_TIMEOUT_BOUNDS_S,
    memory_fit,
    startup_timeout_seconds,
)

MISTRAL = MODELS["mistralai/Mistral-7B-Instruct-v0.3"]


def test_kv_cache_bytes_per_token_matches_published_figure():
    # Llama-3-8B and Mistral-7B hold 128 KiB of KV cache per token in bf16 (2 x 32 x 8 x 128 x 2).
    assert MISTRAL.kv_bytes_per_token() == 2 * 32 * 8 * 128 * 2 == 128 * 1024
    assert MODELS["meta-llama/Llama-3.1-8B-Instruct"].kv_bytes_per_token() == 128 * 1024


def test_memory_fit_by_hand():
    fit = memory_fit(MISTRAL, "none", context=8192, concurrency=4, gpu_count=1, total_gpu_memory_gib=24)
    assert fit.weights_gib == pytest.approx(7.25e9 * 2 / GIB)          # 13.50 GiB
    assert fit.kv_cache_gib == pytest.approx(128 * 1024 * 8192 * 4 / GIB)  # 4.0 GiB
    assert fit.overhead_gib == 1.5
    assert fit.available_gib == pytest.approx(24 * 0.9)
    assert fit.required_gib == pytest.approx(19.004, abs=1e-3)
    assert fit.fits and fit.margin_gib == pytest.approx(2.596, abs=1e-3)


def test_quantization_shrinks_weights_not_kv():
    full = memory_fit(MISTRAL, "none", 4096, 1, 1, 24)
    awq = memory_fit(MISTRAL, "awq", 4096, 1, 1, 24)
    assert awq.weights_gib == pytest.approx(full.weights_gib * 0.5625 / 2)
    assert awq.kv_cache_gib == full.kv_cache_gib


def test_seventy_b_does_not_fit_one_a10g_but_fits_eight():
    llama70 = MODELS["meta-llama/Llama-3.1-70B-Instruct"]
    assert not memory_fit(llama70, "none", 8192, 1, 1, 24).fits
    assert memory_fit(llama70, "none", 8192, 1, 8, 192).fits


def test_startup_timeout_by_hand():
    # 14.5 GB: 145 s download at 100 MB/s + 14.5 s load + 180 s warm-up = 339.5 s; x1.5 = 509 s -> 540 s.
    assert startup_timeout_seconds(MISTRAL, "none", "hub", SAGEMAKER_TIMEOUT_BOUNDS_S) == 540
    # From S3 at 200 MB/s: (72.5 + 14.5 + 180) x 1.5 = 400.5 s -> 420 s.
    assert startup_timeout_seconds(MISTRAL, "none", "s3", SAGEMAKER_TIMEOUT_BOUNDS_S) == 420
    # Longer than the 4-minute default that older guidance used, for any 7B model.
    assert startup_timeout_seconds(MISTRAL, "awq", "s3", SAGEMAKER_TIMEOUT_BOUNDS_S) > 240


def test_startup_timeout_stays_in_sagemaker_bounds():
    falcon = MODELS["tiiuae/falcon-180B-chat"]
    assert startup_timeout_seconds(falcon, "none", "hub", SAGEMAKER_TIMEOUT_BOUNDS_S) == 3600
    assert startup_timeout_seconds(MODELS["Qwen/Qwen2.5-0.5B-Instruct"], "none", "s3", SAGEMAKER_TIMEOUT_BOUNDS_S) >= 60


def test_vertex_targets_are_not_held_to_sagemakers_hour():
    falcon = MODELS["tiiuae/falcon-180B-chat"]
    assert 3600 < startup_timeout_seconds(falcon, "none", "hub", VERTEX_TIMEOUT_BOUNDS_S) <= 7200


def test_the_throughput_model_holds_every_published_measurement_within_25_percent():
    """Each usable point of components/catalog/throughput_points.csv, predicted by the model with the fitted
    factors: none may drift more than 25% (the factors were fit to these points: a change to the model or a
    new point that breaks one fails here)."""
    from components.calibration import TOLERANCE, error, points

    used = [p for p in points() if not p.usable]
    misses = [(p.model, p.gpu, p.concurrency, p.metric, round(error(p) * 100)) for p in used
              if abs(error(p)) > TOLERANCE]
    assert not misses
    assert len(used) >= 30


def test_the_calibration_covers_the_gpus_regimes_and_model_sizes_the_issue_asks_for():
    from components.calibration import points

    used = [p for p in points() if not p.usable]
    assert len({p.gpu for p in used}) >= 4
    assert {p.regime for p in used} == {"one stream", "concurrent", "saturation"}
    assert {round(p.facts.params_billion, -1) for p in used} >= {10.0, 70.0}
    # Every point says where it comes from and what it quotes; every exclusion says why.
    assert all(p.source.strip() for p in points())
    assert all(p.excluded for p in points() if p.usable)


def test_concurrency_trades_per_stream_speed_for_replica_throughput():
    """Per-stream speed falls and replica throughput rises (then flattens) with concurrency; chunked prefill
    keeps the first token quick."""
    from components.catalog.gpus import GPUS
    from components.sizing import Hardware, throughput

    llama = MODELS["meta-llama/Llama-3.1-8B-Instruct"]
    hw = Hardware.of_gpu(GPUS["H100"], 1)
    runs = [throughput(llama, "none", hw, c, 500, 200, 2.0, 8192) for c in (1, 8, 32, 128, 512)]
    speeds = [t.decode_tokens_per_s_per_stream for t in runs]
    totals = [t.output_tokens_per_s for t in runs]
    assert speeds == sorted(speeds, reverse=True) and totals == sorted(totals)
    assert totals[-1] / totals[-2] < 1.3 < totals[2] / totals[1]


def test_fp8_weights_use_fp8_compute_only_where_the_gpu_has_it():
    from components.catalog.gpus import GPUS
    from components.sizing import Hardware, throughput

    llama = MODELS["meta-llama/Llama-3.1-8B-Instruct"]
    def saturated(gpu: str, quant: str) -> float:
        return throughput(llama, quant, Hardware.of_gpu(GPUS[gpu], 1), 256, 1000, 1000, 2.0, 2048).output_tokens_per_s
    # Hopper runs fp8 matmuls at twice the bf16 rate; an A100 only reads half the bytes.
    assert saturated("H100", "fp8") / saturated("H100", "none") > saturated("A100-80GB", "fp8") / saturated(
        "A100-80GB", "none")


def test_the_plan_takes_the_most_concurrency_that_meets_the_service_level():
    from components.catalog.gpus import GPUS
    from components.sizing import Hardware, ServiceLevel, capacity, engine_limits, throughput

    llama = MODELS["meta-llama/Llama-3.1-8B-Instruct"]
    hw = Hardware.of_gpu(GPUS["L40S"], 1)
    limits = engine_limits(None, hw)
    level = ServiceLevel(min_stream_tokens_per_s=30, max_ttft_s=2)
    found = capacity(llama, "none", hw, 500, 200, level, limits)
    assert found is not None and found.service_level_met
    c = found.at_service_level.concurrency
    assert found.at_service_level.decode_tokens_per_s_per_stream >= 30
    assert throughput(llama, "none", hw, c + 1, 500, 200, 2.0, limits.max_batched_tokens
                      ).decode_tokens_per_s_per_stream < 30
    assert found.saturation.output_tokens_per_s > found.at_service_level.output_tokens_per_s
    # A floor no stream can reach: planned at one stream, and said so.
    slow = capacity(llama, "none", hw, 500, 200, ServiceLevel(min_stream_tokens_per_s=10_000), limits)
    assert slow is not None and not slow.service_level_met and slow.at_service_level.concurrency == 1


def test_vllm_sequence_limits_follow_its_defaults_by_gpu():
    from components.catalog.gpus import GPUS
    from components.sizing import Hardware, engine_limits

    assert engine_limits(None, Hardware.of_gpu(GPUS["H100"], 1)).max_seqs == 1024
    assert engine_limits(None, Hardware.of_gpu(GPUS["A100-80GB"], 1)).max_seqs == 256
    assert engine_limits(None, Hardware.of_gpu(GPUS["L4"], 1)).max_batched_tokens == 2048
    assert engine_limits(1, Hardware.of_gpu(GPUS["L4"], 1)).max_seqs == 1
