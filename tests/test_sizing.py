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


def test_the_roofline_model_against_the_published_measurements():
    """The errors the README states (-1.5%, -23%, -6%, -3%, -1%), recomputed: the model may not drift from them."""
    from components.sizing import MEASUREMENTS, predicted

    errors = [(predicted(m) - m.measured) / m.measured * 100 for m in MEASUREMENTS]
    assert errors == pytest.approx([-1.5, -22.9, -6.2, -3.2, -1.3], abs=0.1)
    assert [m.calibration for m in MEASUREMENTS] == [True, False, False, False, False]
