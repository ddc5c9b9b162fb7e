"""The `hf-endpoint` target kind on the `huggingface` platform: the `hf-dev` stack as previewed, the config it
rejects (with key paths), its price from Hugging Face's published table, and `selfhost size` over its hosts."""

from __future__ import annotations

import json

import pytest

from components.catalog.hf_instances import INSTANCE_GPU, instances
from components.catalog.pricing import lookup
from components.config import ConfigError, load_environment
from components.cost import HOURS_PER_MONTH
from selfhost.cost_report import price_preview
from selfhost.project import stack_config

from .conftest import ROOT


def hf_config(**changes: object) -> tuple[dict[str, str], set[str]]:
    """The shipped hf-dev config as the program sees it, with `target.<key>` / `account.<key>` / `<config key>`
    changes (None deletes)."""
    from selfhost.project import load_project

    raw, secret_keys = stack_config(load_project(ROOT), "hf-dev")
    targets = json.loads(raw["selfhost-llm:targets"])
    account = json.loads(raw["selfhost-llm:huggingface"])
    for key, value in changes.items():
        where, _, leaf = key.partition(".")
        node = targets[0] if where == "target" else account if where == "account" else None
        if node is None:
            if value is None:
                raw.pop(key, None)
                secret_keys = {k for k in secret_keys if k != key}
            else:
                raw[key] = str(value)
            continue
        *parents, last = leaf.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    raw["selfhost-llm:targets"] = json.dumps(targets)
    raw["selfhost-llm:huggingface"] = json.dumps(account)
    return raw, set(secret_keys)


def problems_of(raw: dict[str, str], secret_keys: set[str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_environment("hf-dev", raw, secret_keys)
    return [str(p) for p in info.value.problems]


def test_the_shipped_config_is_valid():
    load_environment("hf-dev", *hf_config())


@pytest.mark.parametrize(("changes", "path", "words"), [
    ({"target.endpointType": "public"}, "selfhost-llm:targets[0].endpointType", "set allowPublic: true"),
    ({"target.region": "us-west-2"}, "selfhost-llm:targets[0].region", "allowed: us-east-1, eu-west-1"),
    ({"target.instanceSize": "x2"}, "selfhost-llm:targets[0].instanceSize", "allowed: x1, x4"),
    ({"target.instanceType": "nvidia-k80"}, "selfhost-llm:targets[0].instanceType", "nvidia-l4"),
    ({"target.vendor": "gcp"}, "selfhost-llm:targets[0].region", "allowed: us-east4"),
    ({"target.scaling.scaleToZeroAfterMinutes": 7}, "selfhost-llm:targets[0].scaling.scaleToZeroAfterMinutes",
     "15, 30, 60"),
    ({"target.scaling.minReplicas": 1}, "selfhost-llm:targets[0].scaling.scaleToZeroAfterMinutes",
     "only with minReplicas 0"),
    ({"target.concurrency": 64, "target.instanceType": "nvidia-t4"}, "selfhost-llm:targets[0].instanceType",
     "offers 14.4 GiB usable"),
    ({"selfhost-llm:hfToken": None}, "selfhost-llm:hfToken", "creates a Hugging Face Inference Endpoint"),
    ({"selfhost-llm:huggingface": None}, "selfhost-llm:huggingface", "required for hf-endpoint targets"),
])
def test_invalid_config_names_the_key(changes, path, words):
    raw, secret_keys = hf_config(**{k: v for k, v in changes.items() if k != "selfhost-llm:huggingface"})
    if "selfhost-llm:huggingface" in changes:
        raw.pop("selfhost-llm:huggingface")
    found = problems_of(raw, secret_keys)
    matching = [text for text in found if text.startswith(path + ":")]
    assert matching, found
    assert any(words in text for text in matching), matching


def test_a_public_endpoint_is_accepted_only_when_meant():
    load_environment("hf-dev", *hf_config(**{"target.endpointType": "public", "target.allowPublic": True}))


def test_the_endpoint_is_declared_with_its_token_secret_and_pinned_revision(previews):
    p = previews["hf-dev"]
    (endpoint,) = p.by_type("pulumi-python:dynamic/hf:InferenceEndpoint")
    assert {"token", "__provider"} <= set(endpoint.secret_paths)
    assert "REPLACE-with" not in json.dumps(endpoint.inputs)
    i = endpoint.inputs
    assert (i["namespace"], i["name"], i["vendor"], i["region"]) == ("acme-ml", "hf-dev-chat", "aws", "us-east-1")
    assert (i["instanceType"], i["instanceSize"], i["minReplica"], i["maxReplica"], i["scaleToZeroTimeout"]) == (
        "nvidia-l4", "x1", 0, 2, 15)
    assert i["revision"] == "989aa7980e4cf806f80c7fef2b1adb7bc71aa306" and i["type"] == "authenticated"
    assert i["image"]["kind"] == "vllm" and i["image"]["url"].startswith("vllm/vllm-openai:v")
    record = p.outputs["endpoints"]["chat"]
    assert record["kind"] == "hf-endpoint" and record["auth"] == "hf-token"
    assert record["openaiBaseUrl"].endswith(".us-east-1.aws.endpoints.huggingface.cloud/v1")


def test_priced_at_hugging_faces_rate_with_scale_to_zero_hours(previews):
    """8 busy hours a day at 2,000 requests: one L4 replica awake in them and for the 15-minute timeout after,
    asleep otherwise: (8 + 0.25) / 24 of the month at $0.80 an hour."""
    est = price_preview(previews["hf-dev"].to_json(), lookup)
    (item,) = est.items
    assert item.unit_usd == 0.8 and "pricing.md" in item.source and item.confidence == "list"
    assert item.quantity == pytest.approx((0, (8 + 0.25) / 24 * HOURS_PER_MONTH, 2 * HOURS_PER_MONTH))
    assert est.unpriced_count() == 0 and est.usd_per_1m_tokens is not None
    rows = {r["api"]: r for r in est.api_comparison()}
    # Any load needs a replica awake: the break-even is never "0 requests/day".
    assert rows["claude-haiku-4-5"]["breakEvenRequestsPerDay"] > 0
    assert rows["claude-haiku-4-5"]["breakEvenNote"] == "with 1 replica"


def test_every_published_gpu_instance_is_a_host_with_its_price():
    for vendor in ("aws", "gcp"):
        for sku, inst in instances(vendor).items():
            assert inst.instance_type in INSTANCE_GPU
            price = lookup("huggingface", "inference-endpoint", vendor, sku)
            assert price is not None and price.usd > 0, (vendor, sku)
    # The published table's figures (support/pricing.md, 2026-05-19).
    assert lookup("huggingface", "inference-endpoint", "aws", "nvidia-l4-x1").usd == 0.8
    assert lookup("huggingface", "inference-endpoint", "gcp", "nvidia-h100-x1").usd == 10.0
    # Deprecated rows (aws nvidia-h100, nvidia-b200) cannot be created: not offered.
    assert "nvidia-h100-x1" not in instances("aws")


def test_prices_refresh_reads_hugging_faces_published_table(tmp_path):
    """`selfhost prices refresh --hf-pricing` on the page as recorded (tests/data/pricing/hf/pricing.md, the
    documentation at 86ef8b31, 2026-05-19): the GPU rows, none of the deprecated ones, the other files kept."""
    import shutil

    from typer.testing import CliRunner

    from components.catalog.pricing import DATA_DIR, load
    from selfhost.cli import app

    for f in DATA_DIR.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "huggingface.csv").unlink()
    page = ROOT / "tests" / "data" / "pricing" / "hf" / "pricing.md"
    result = CliRunner().invoke(app, ["prices", "refresh", "--hf-pricing", str(page), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {k: r for k, r in load(tmp_path).items() if k[0] == "huggingface"}
    committed = {k: r for k, r in load(DATA_DIR).items() if k[0] == "huggingface"}
    assert {k: r.usd for k, r in rows.items()} == {k: r.usd for k, r in committed.items()}
    assert rows[("huggingface", "inference-endpoint", "aws", "nvidia-l40s-x8")].usd == 23.5
    assert not any("h100" in k[3] for k in rows if k[2] == "aws")  # deprecated on AWS
    assert len(load(tmp_path)) == len(load(DATA_DIR))  # the AWS and GCP rows kept as they were
    empty = tmp_path / "empty.md"
    empty.write_text("# Pricing\n")
    bad = CliRunner().invoke(app, ["prices", "refresh", "--hf-pricing", str(empty), "--out", str(tmp_path)])
    assert bad.exit_code == 1 and "no GPU Instances table" in bad.output

