"""The TPU catalog against itself and against the price and quota tables it relies on."""

import math

import pytest

from components.catalog import tpus
from components.catalog.pricing import lookup
from components.catalog.quotas import quota_for


def _chips_of(topology: str) -> int:
    return math.prod(int(d) for d in topology.split("x"))


def test_every_figure_of_every_chip_has_a_source():
    for chip in tpus.CHIPS.values():
        assert chip.name == f"TPU-{chip.generation}"
        assert set(chip.facts) >= {"hbm_gib", "bandwidth_gb_s", "bf16_tflops", "int8_tops", "fp8_tflops", "ici_gb_s"}
        assert all(f.source.strip() and f.read for f in chip.facts.values())
        assert chip.hbm_gib > 0 and chip.bandwidth_gb_s > 0 and chip.bf16_tflops > 0 and chip.ici_gb_s > 0
        # v5e and v6e have no fp8 matrix unit; int8 is twice bf16 on both.
        assert chip.fp8_tflops is None
        assert chip.int8_tops == pytest.approx(2 * chip.bf16_tflops, rel=0.01)


def test_published_figures():
    v5e, v6e = tpus.CHIPS["TPU-v5e"], tpus.CHIPS["TPU-v6e"]
    assert (v5e.hbm_gib, v5e.bandwidth_gb_s, v5e.bf16_tflops, v5e.ici_gb_s) == (16, 819, 197, 200)
    assert (v6e.hbm_gib, v6e.bandwidth_gb_s, v6e.bf16_tflops, v6e.ici_gb_s) == (32, 1638, 918, 400)


def test_machines_name_real_chips_and_their_chip_counts_match_their_topologies():
    assert set(tpus.VERTEX_MACHINES) == {"ct5lp-hightpu-1t", "ct5lp-hightpu-4t", "ct5lp-hightpu-8t",
                                         "ct6e-standard-1t", "ct6e-standard-4t", "ct6e-standard-8t"}
    for name, m in tpus.VERTEX_MACHINES.items():
        assert m.name == name and m.chip in tpus.CHIPS
        assert m.chips == _chips_of(m.topology) == int(name.rsplit("-", 1)[1].rstrip("t"))
        assert m.vcpus > 0 and m.memory_gib > 0 and all(f.source for f in m.facts.values())
        gen = tpus.CHIPS[m.chip].generation
        assert tpus.GKE_TOPOLOGIES[gen][m.topology] == m.chips
        assert tpus.gke_machine_type(gen, m.topology) == name
        assert tpus.chip_of(name) is tpus.CHIPS[m.chip]


def test_gke_topologies_labels_and_machine_types_agree():
    assert set(tpus.GKE_TOPOLOGIES) == set(tpus.GKE_ACCELERATOR_LABEL) == set(tpus.GENERATION_CHIP)
    assert tpus.GKE_ACCELERATOR_LABEL == {"v5e": "tpu-v5-lite-podslice", "v6e": "tpu-v6e-slice"}
    for gen, shapes in tpus.GKE_TOPOLOGIES.items():
        for topology, chips in shapes.items():
            assert chips == _chips_of(topology)
            assert tpus.gke_machine_type(gen, topology) in tpus.VERTEX_MACHINES
    assert tpus.gke_machine_type("v6e", "4x4") is None  # multi-host: not a single-host node pool


def test_every_vertex_region_generation_has_machines_prices_and_quotas():
    generations = {tpus.CHIPS[m.chip].generation for m in tpus.VERTEX_MACHINES.values()}
    assert {"us-central1", "europe-west4"} <= set(tpus.VERTEX_TPU_REGIONS)
    for region, gens in tpus.VERTEX_TPU_REGIONS.items():
        assert gens and gens <= generations <= tpus.VLLM_TPU.generations
        for gen in gens:
            for service, sku in (("vertex-prediction-tpu", gen), ("gce-tpu", gen), ("gce-tpu", f"{gen}-spot")):
                price = lookup("gcp", service, region, sku)
                assert price is not None and price.usd > 0, (service, region, sku)
            on_demand = lookup("gcp", "gce-tpu", region, gen)
            spot = lookup("gcp", "gce-tpu", region, f"{gen}-spot")
            vertex = lookup("gcp", "vertex-prediction-tpu", region, gen)
            assert on_demand and spot and vertex
            assert spot.usd < on_demand.usd < vertex.usd


def test_price_rows_are_per_chip_hour_and_derived_rows_say_so():
    for region in ("us-central1", "europe-west4"):
        for gen in ("v5e", "v6e"):
            row = lookup("gcp", "gce-tpu", region, gen)
            assert row is not None and row.unit == "hour" and row.confidence == "list"
            assert "per chip-hour" in row.source
            vertex = lookup("gcp", "vertex-prediction-tpu", region, gen)
            assert vertex is not None and vertex.source.startswith("derived:") and vertex.confidence == "medium"
            assert "per chip-hour" in vertex.source


def test_quota_rows_exist_for_each_generation():
    for gen in ("v5e", "v6e"):
        for kind in ("gce-tpus", "gce-tpus-spot", "vertex-tpus", "vertex-tpus-spot"):
            row = quota_for(f"{kind}:{gen}")
            assert row is not None, f"{kind}:{gen}"
            assert row.unit == "TPUs" and row.scope == "region" and row.source.strip()
            service = "aiplatform.googleapis.com" if kind.startswith("vertex") else "compute.googleapis.com"
            assert row.service == service
    assert quota_for("gce-tpus:v5e").quota_code == "TPU_LITE_PODSLICE_V5"  # type: ignore[union-attr]
    assert quota_for("vertex-tpus:v5e").quota_name == "CustomModelServingV5ETPUPerProjectPerRegion"  # type: ignore[union-attr]


def test_vllm_tpu_facts():
    v = tpus.VLLM_TPU
    assert v.generations == {"v5e", "v6e"}
    for gen in v.generations:
        assert "bf16" in v.quantizations[gen]
        assert not any(q.startswith("fp8") for q in v.quantizations[gen])
    assert v.xla_cache_env == "VLLM_XLA_CACHE_PATH"
    # Pinned images: a tag that is not latest or nightly.
    for image in (v.gke_image, v.vertex_image):
        tag = image.rsplit(":", 1)[1]
        assert tag and tag not in ("latest", "nightly")
    assert all(f.source for f in v.facts.values())
