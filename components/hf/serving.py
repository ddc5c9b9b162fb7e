"""`selfhost:hf:InferenceEndpoint`: one model on a Hugging Face Inference Endpoint, in the account's namespace.

The endpoint itself is components/hf/endpoint.py's dynamic resource; this component chooses its serving image
from the model's engine (Hugging Face's image variants: vLLM, TGI, llama.cpp), pins the model's revision, and
passes the token as a secret that stays encrypted in the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from ..catalog.engines import ENGINES
from ..schema import ModelSpec
from .endpoint import HfEndpointArgs, HfImage, HfInferenceEndpoint

# The container each engine runs in, as the API's image variants take them; the versions are the engine
# catalog's (components/catalog/engines.py), the same the other targets serve.
IMAGES: dict[str, tuple[str, str, int]] = {
    "vllm": ("vllm", f"vllm/vllm-openai:v{ENGINES['vllm'].sagemaker_version}", 8000),
    "tgi": ("tgi", f"ghcr.io/huggingface/text-generation-inference:{ENGINES['tgi'].sagemaker_version}", 80),
    "llamacpp": ("llamacpp", "ghcr.io/ggml-org/llama.cpp:server-cuda", 8080),
}


@dataclass(frozen=True)
class HfFoundation:
    """What every Hugging Face target of a stack shares: the namespace endpoints are created and billed under."""

    namespace: str


@dataclass(frozen=True)
class HfServingArgs:
    account: HfFoundation
    model: ModelSpec
    token: pulumi.Input[str]
    framework: str
    wait_timeout_seconds: int
    vendor: Literal["aws", "gcp"]
    """The cloud Hugging Face runs the endpoint on."""
    region: str
    instance_type: str
    """Hugging Face's instance type, e.g. nvidia-l4."""
    instance_size: str
    """e.g. x1 (the GPU count)."""
    task: str
    endpoint_type: Literal["private", "authenticated", "public"]
    min_replicas: int
    """0: the endpoint sleeps after `scale_to_zero_after_minutes` without requests."""
    max_replicas: int
    scale_to_zero_after_minutes: int | None


def image_of(model: ModelSpec) -> HfImage:
    kind, url, port = IMAGES[model.engine]
    settings: dict[str, Any] = {}
    if model.engine == "llamacpp" and model.file:
        # Hugging Face mounts the repository at /repository; llama.cpp serves the one GGUF file.
        settings = {"modelPath": f"/repository/{model.file}", "ctxSize": model.max_context}
    return HfImage(kind, url, port, "/health", settings)


class HfServing(pulumi.ComponentResource):
    def __init__(self, name: str, args: HfServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("selfhost:hf:InferenceEndpoint", name, None, opts)
        model = args.model
        self.endpoint_name: str = name
        endpoint = HfInferenceEndpoint(f"{name}-endpoint", HfEndpointArgs(
            namespace=args.account.namespace, name=name, vendor=args.vendor, region=args.region, accelerator="gpu",
            instance_type=args.instance_type, instance_size=args.instance_size, repository=model.id,
            token=args.token, revision=model.revision, task=args.task, framework=args.framework,
            image=image_of(model), type=args.endpoint_type, min_replica=args.min_replicas,
            max_replica=args.max_replicas,
            scale_to_zero_timeout_minutes=args.scale_to_zero_after_minutes if args.min_replicas == 0 else None,
            wait_timeout_seconds=args.wait_timeout_seconds,
        ), pulumi.ResourceOptions(parent=self))
        # Attributes, not class annotations: the SDK resolves a resource class's annotations again on every
        # registration (see HfInferenceEndpoint).
        self.url: pulumi.Output[str] = endpoint.url
        # vLLM, TGI and llama.cpp's servers all answer OpenAI's API under /v1.
        self.openai_base_url: pulumi.Output[str] = endpoint.url.apply(lambda u: f"{u.rstrip('/')}/v1" if u else "")
        self.register_outputs({"url": self.url, "openaiBaseUrl": self.openai_base_url})
