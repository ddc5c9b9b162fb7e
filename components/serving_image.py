"""Our serving images (containers/): what to build, and a content tag that changes only when they do."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CONTAINERS = Path(__file__).resolve().parents[1] / "containers"


@dataclass(frozen=True)
class ImageSpec:
    name: str
    dockerfile: str
    """Relative to CONTAINERS, which is the build context."""
    cuda: tuple[int, int] | None
    """CUDA of the base image (vllm/vllm-openai v0.11.0 is built on CUDA 12.8): picks the SageMaker host AMI."""


# Per engine: the image that runs it behind our adapter.
IMAGES: dict[str, ImageSpec] = {
    "vllm": ImageSpec("selfhost-vllm", "vllm/Dockerfile", (12, 8)),
}


def content_tag(root: Path = CONTAINERS) -> str:
    """A tag from the hash of every file in the build context: registries keep tags immutable, so a new tag
    appears exactly when the images' sources change, and re-running `pulumi up` on the same code builds nothing."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"src-{digest.hexdigest()[:16]}"


def adapter_environment(model_id: str, flags: list[tuple[str, str]]) -> dict[str, str]:
    """Environment our adapter reads (containers/adapter settings): the engine, the weights and the engine's
    flags (from catalog.engines.vllm_flags; the adapter names the model to vLLM itself)."""
    args = " ".join(f"{flag} {value}" for flag, value in flags if flag != "--model")
    return {"SELFHOST_ENGINE": "vllm", "HF_MODEL_ID": model_id, "SELFHOST_ENGINE_ARGS": args}
