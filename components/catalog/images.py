"""Serving image URIs for SageMaker, from the `sagemaker` package's own image tables.

`sagemaker_images.json` holds the URI `sagemaker.core.image_uris.retrieve` gives for each engine (framework and
version in engines.py) in each region, for GPU instances. It is generated, not written by hand:

    .venv/bin/python -m components.catalog.images

Keeping the resolved URIs in a file pins the images a stack deploys until someone regenerates it (an upgrade
of the `sagemaker` package never swaps an image silently), and spares every preview the 8-second import of
`sagemaker.core`. tests/test_catalog.py checks the file against `retrieve` on every test run.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from .engines import ENGINES

TABLE = Path(__file__).with_name("sagemaker_images.json")
# Any GPU type selects the GPU image; retrieve() looks only at the processor the type implies.
GPU_PROBE_INSTANCE = "ml.g5.2xlarge"


class UnknownImage(LookupError):
    pass


@cache
def _table() -> dict[str, dict[str, str]]:
    return json.loads(TABLE.read_text())["images"]


def sagemaker_image(engine: str, region: str) -> str:
    """The AWS Deep Learning Container URI for `engine` in `region`."""
    try:
        return _table()[engine][region]
    except KeyError:
        raise UnknownImage(f"no {engine} image for {region} in {TABLE.name}") from None


def image_regions(engine: str) -> list[str]:
    return sorted(_table().get(engine, {}))


def retrieve(engine: str, region: str) -> str:
    """Ask the `sagemaker` package itself (slow to import: only for generating and checking the table)."""
    from sagemaker.core import image_uris

    e = ENGINES[engine]
    assert e.sagemaker_framework is not None
    return image_uris.retrieve(e.sagemaker_framework, region=region, version=e.sagemaker_version,
                               image_scope="inference", instance_type=GPU_PROBE_INSTANCE)


def generate() -> dict:
    from importlib.metadata import version

    from .sagemaker_instances import known_regions

    images: dict[str, dict[str, str]] = {}
    for engine in (name for name, e in ENGINES.items() if e.sagemaker_framework):
        for region in known_regions():
            try:
                images.setdefault(engine, {})[region] = retrieve(engine, region)
            except ValueError:
                continue  # the framework has no image in this region
    return {"source": f"sagemaker.core.image_uris.retrieve, sagemaker-core {version('sagemaker-core')}",
            "instance": GPU_PROBE_INSTANCE, "images": images}


# SageMaker host images by the newest CUDA their NVIDIA driver runs, oldest first. A container built for a newer
# CUDA than the host's driver fails to start, and the default hosts of older families still run driver 470.
# Source: botocore's SageMaker service model, ProductionVariant.InferenceAmiVersion (botocore 1.43.117), 2026-11-29.
INFERENCE_AMIS: tuple[tuple[tuple[int, int], str], ...] = (
    ((12, 2), "al2-ami-sagemaker-inference-gpu-2"),      # driver 535
    ((12, 4), "al2-ami-sagemaker-inference-gpu-3-1"),    # driver 550
    ((13, 0), "al2023-ami-sagemaker-inference-gpu-4-1"),  # driver 580
)
_CUDA_TAG = re.compile(r"[-_]cu(\d{2})(\d)(?:\D|$)")


def cuda_version(image_uri: str) -> tuple[int, int] | None:
    """The CUDA version in a DLC tag (`...-cu124-...` is 12.4), or None for an image without one."""
    m = _CUDA_TAG.search(image_uri.rsplit(":", 1)[-1])
    return (int(m[1]), int(m[2])) if m else None


def inference_ami(image_uri: str) -> str | None:
    """The oldest SageMaker host image whose driver runs the image's CUDA (None: leave SageMaker's default)."""
    return ami_for_cuda(cuda_version(image_uri), image_uri)


def ami_for_cuda(cuda: tuple[int, int] | None, image: str = "") -> str | None:
    if cuda is None:
        return None
    for supported, ami in INFERENCE_AMIS:
        if cuda <= supported:
            return ami
    raise UnknownImage(f"no SageMaker host image runs CUDA {cuda[0]}.{cuda[1]} ({image})")


_ECR_URI = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
                      r"/(?P<repo>[^:@]+)")


def is_ecr(image_uri: str) -> bool:
    """Whether an image reference names an ECR repository (reached through the VPC's endpoints, no NAT needed)."""
    return _ECR_URI.match(image_uri) is not None


def ecr_repository_arn(image_uri: str) -> str:
    """arn:aws:ecr:<region>:<account>:repository/<name> of an ECR image URI (the repository IAM must name)."""
    m = _ECR_URI.match(image_uri)
    if not m:
        raise ValueError(f"not an ECR image URI: {image_uri}")
    return f"arn:aws:ecr:{m['region']}:{m['account']}:repository/{m['repo']}"


if __name__ == "__main__":
    TABLE.write_text(json.dumps(generate(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {TABLE}")
