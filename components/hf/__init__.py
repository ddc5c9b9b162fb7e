"""Hugging Face Inference Endpoints: a Pulumi dynamic resource over the `huggingface_hub` client (no official
Pulumi or Terraform provider exists). Imported only when a stack declares an `hf-endpoint` target."""

from .endpoint import (
    HfEndpointArgs,
    HfEndpointError,
    HfEndpointProvider,
    HfImage,
    HfInferenceEndpoint,
)

__all__ = ["HfEndpointArgs", "HfEndpointError", "HfEndpointProvider", "HfImage", "HfInferenceEndpoint"]
