"""The data tables against their sources."""

import json

import pytest

from components.catalog import images
from components.catalog.engines import ENGINES, QUANT_BYTES_PER_PARAM
from components.catalog.images import cuda_version, ecr_repository_arn, inference_ami, sagemaker_image
from components.catalog.models import MODELS
from components.catalog.sagemaker_instances import (
    FAMILY_GPU,
    UNSUPPORTED_FAMILIES,
    _package_table,
    family_of,
    instances_in,
)


def test_image_table_is_what_the_sagemaker_package_retrieves():
    """The committed image table must be exactly what sagemaker.core.image_uris.retrieve gives now:
    regenerate it with `python -m components.catalog.images` after changing engines or upgrading sagemaker."""
    committed = json.loads(images.TABLE.read_text())
    assert committed == images.generate()


def test_image_for_each_engine_in_us_east_1():
    assert sagemaker_image("vllm", "us-east-1").startswith(
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-vllm:")
    assert "huggingface-pytorch-tgi-inference" in sagemaker_image("tgi", "eu-west-1")
    assert "djl-inference" in sagemaker_image("lmi", "us-west-2")
    with pytest.raises(images.UnknownImage):
        sagemaker_image("vllm", "mars-north-1")


def test_ecr_repository_arn():
    uri = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-vllm:0.29.0-gpu"
    assert ecr_repository_arn(uri) == "arn:aws:ecr:us-east-1:763104351884:repository/huggingface-vllm"
    with pytest.raises(ValueError):
        ecr_repository_arn("docker.io/library/nginx:latest")


def test_every_gpu_family_the_sagemaker_package_lists_is_mapped():
    families = {family_of(t) for region in _package_table().values() for t in region}
    assert families <= set(FAMILY_GPU) | UNSUPPORTED_FAMILIES, families - set(FAMILY_GPU)
    assert not any(family_of(t) in UNSUPPORTED_FAMILIES for t in instances_in("us-east-1"))


def test_instances_merge_package_data_and_supplement():
    us = instances_in("us-east-1")
    assert us["ml.g5.12xlarge"].gpu_count == 4 and us["ml.g5.12xlarge"].total_gpu_memory_gib == 96
    assert us["ml.g5.12xlarge"].gpu.name == "A10G"
    assert us["ml.g6.xlarge"].gpu.name == "L4" and us["ml.g6e.xlarge"].gpu.memory_gib == 48
    assert us["ml.p4d.24xlarge"].has_instance_storage and not us["ml.p3.2xlarge"].has_instance_storage
    assert instances_in("nowhere-1") == {}


def test_model_facts_are_consistent():
    for model_id, facts in MODELS.items():
        assert "/" in model_id
        assert facts.layers > 0 and facts.kv_heads > 0 and facts.head_dim in (64, 80, 96, 128, 256), model_id
        assert facts.params_billion > 0.1 and facts.max_context >= 2048, model_id


def test_every_engine_quantization_has_a_byte_size():
    for engine in ENGINES.values():
        assert set(engine.quantization) <= set(QUANT_BYTES_PER_PARAM)
        # Engines that load a repository serve it unquantized too; a GGUF file always has a quantization.
        assert engine.quantization.get("none") == ("" if not engine.gguf else None)


def test_host_driver_matches_the_image_cuda():
    assert cuda_version(sagemaker_image("tgi", "us-east-1")) == (12, 4)
    assert inference_ami(sagemaker_image("tgi", "us-east-1")) == "al2-ami-sagemaker-inference-gpu-3-1"
    assert cuda_version(sagemaker_image("vllm", "us-east-1")) == (13, 0)
    assert inference_ami(sagemaker_image("vllm", "us-east-1")) == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert inference_ami(sagemaker_image("lmi", "us-east-1")) == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert inference_ami("123456789012.dkr.ecr.us-east-1.amazonaws.com/ours:1.0") is None
    with pytest.raises(images.UnknownImage):
        inference_ami("123456789012.dkr.ecr.us-east-1.amazonaws.com/ours:1.0-cu140")


def test_host_image_names_are_ones_the_sagemaker_api_accepts():
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    accepted = model.shape_for("ProductionVariantInferenceAmiVersion").enum
    assert {ami for _, ami in images.INFERENCE_AMIS} <= set(accepted)


def test_pure_logic_imports_no_provider_sdk():
    """Config, catalogs, sizing, cost, guardrails and the target registry load without pulumi_aws or pulumi_gcp:
    validation, `selfhost size`, cost and policy stay fast, and the components are where the providers live."""
    import subprocess
    import sys

    code = ("import sys, components.config, components.cost, components.sizing, components.sizing_options, "
            "components.policies, components.targets.registry; "
            "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('pulumi_', 'sagemaker'))}))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.strip() == "[]"
