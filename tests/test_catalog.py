"""The data tables against their sources."""

import json

import pytest

from components.catalog import images
from components.catalog.engines import ENGINES, QUANT_BYTES_PER_PARAM
from components.catalog.images import ecr_repository_arn, sagemaker_image
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
    assert sagemaker_image("vllm", "us-east-1").startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-vllm:")
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
        assert engine.quantization["none"] == ""
