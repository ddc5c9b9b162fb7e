"""Serving image URIs, from the `sagemaker` package's own tables."""

from __future__ import annotations

import re
from functools import cache

from .engines import ENGINES


@cache
def sagemaker_image(engine: str, region: str, instance_type: str) -> str:
    """The AWS Deep Learning Container for `engine` in `region`, e.g. 763104351884.dkr.ecr.us-east-1...

    Imported here, not at module load: `sagemaker.core` takes seconds to import and only SageMaker targets need it.
    """
    from sagemaker.core import image_uris

    e = ENGINES[engine]
    return image_uris.retrieve(e.sagemaker_framework, region=region, version=e.sagemaker_version,
                               image_scope="inference", instance_type=instance_type)


_ECR_URI = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+)")


def ecr_repository_arn(image_uri: str) -> str:
    """arn:aws:ecr:<region>:<account>:repository/<name> of an ECR image URI (the repository IAM must name)."""
    m = _ECR_URI.match(image_uri)
    if not m:
        raise ValueError(f"not an ECR image URI: {image_uri}")
    return f"arn:aws:ecr:{m['region']}:{m['account']}:repository/{m['repo']}"
