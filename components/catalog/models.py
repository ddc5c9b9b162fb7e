"""Open model facts used for memory sizing and gating.

Source: each model's `config.json` and model card on the Hugging Face Hub (num_hidden_layers,
num_key_value_heads, head_dim or hidden_size / num_attention_heads, max_position_embeddings; parameter count
from the safetensors index; licence and gating from the card), read 2026-11-29; `hidden_size` from the same
config.json files, read 2026-12-07 (a GGUF repository's is its base model's). A model missing here can still be
deployed: its stack entry then states these facts under `facts:`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFacts:
    params_billion: float
    layers: int
    kv_heads: int
    head_dim: int
    max_context: int
    license: str = "unknown"
    # Gated repositories need an accepted licence and a Hugging Face token to download.
    gated: bool = False
    hidden_size: int | None = None
    """The model's width (config.json `hidden_size`): what a LoRA adapter's matrices are sized by, each adapted
    module as (in + out) x rank with in and out taken as the width (components/sizing.py LoraSlots says what that
    leaves out). None: estimated from the parameter count (`width`)."""

    @property
    def width(self) -> int:
        """`hidden_size`, or the width a dense transformer of this size and depth has (about 12 x layers x width^2
        parameters: Llama-3.1-8B gives 4,570 for its 4,096)."""
        return self.hidden_size or round((self.params_billion * 1e9 / (12 * self.layers)) ** 0.5)

    def kv_bytes_per_token(self, kv_bytes: float = 2.0) -> float:
        """Bytes of KV cache one token holds: K and V, per layer, per KV head, per head dimension (the sizing vLLM's
        docs use: 128 KiB a token for Llama-3-8B and Mistral-7B in bf16)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * kv_bytes


MODELS: dict[str, ModelFacts] = {
    # The book's models.
    "meta-llama/Llama-2-7b-chat-hf": ModelFacts(6.74, 32, 32, 128, 4096, "llama2", True, hidden_size=4096),
    "meta-llama/Llama-2-13b-chat-hf": ModelFacts(13.0, 40, 40, 128, 4096, "llama2", True, hidden_size=5120),
    "meta-llama/Llama-2-70b-chat-hf": ModelFacts(69.0, 80, 8, 128, 4096, "llama2", True, hidden_size=8192),
    "mistralai/Mistral-7B-Instruct-v0.2": ModelFacts(7.24, 32, 8, 128, 32768, "apache-2.0", True, hidden_size=4096),
    "tiiuae/falcon-7b-instruct": ModelFacts(7.22, 32, 1, 64, 2048, "apache-2.0", hidden_size=4544),
    "tiiuae/falcon-40b-instruct": ModelFacts(41.8, 60, 8, 64, 2048, "apache-2.0", hidden_size=8192),
    "tiiuae/falcon-180B-chat": ModelFacts(179.5, 80, 8, 64, 2048, "falcon-180b", True, hidden_size=14848),
    "google/gemma-2b-it": ModelFacts(2.51, 18, 1, 256, 8192, "gemma", True, hidden_size=2048),
    "google/gemma-7b-it": ModelFacts(8.54, 28, 16, 256, 8192, "gemma", True, hidden_size=3072),
    "microsoft/phi-2": ModelFacts(2.78, 32, 32, 80, 2048, "mit", hidden_size=2560),
    # Current ones.
    "mistralai/Mistral-7B-Instruct-v0.3": ModelFacts(7.25, 32, 8, 128, 32768, "apache-2.0", True, hidden_size=4096),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ModelFacts(46.7, 32, 8, 128, 32768, "apache-2.0", True, hidden_size=4096),
    "meta-llama/Llama-3.1-8B-Instruct": ModelFacts(8.03, 32, 8, 128, 131072, "llama3.1", True, hidden_size=4096),
    "meta-llama/Llama-3.1-70B-Instruct": ModelFacts(70.6, 80, 8, 128, 131072, "llama3.1", True, hidden_size=8192),
    "meta-llama/Llama-3.2-1B-Instruct": ModelFacts(1.24, 16, 8, 64, 131072, "llama3.2", True, hidden_size=2048),
    "meta-llama/Llama-3.2-3B-Instruct": ModelFacts(3.21, 28, 8, 128, 131072, "llama3.2", True, hidden_size=3072),
    "Qwen/Qwen2.5-0.5B-Instruct": ModelFacts(0.49, 24, 2, 64, 32768, "apache-2.0", hidden_size=896),
    "Qwen/Qwen2.5-1.5B-Instruct": ModelFacts(1.54, 28, 2, 128, 32768, "apache-2.0", hidden_size=1536),
    "Qwen/Qwen2.5-7B-Instruct": ModelFacts(7.62, 28, 4, 128, 32768, "apache-2.0", hidden_size=3584),
    "Qwen/Qwen2.5-14B-Instruct": ModelFacts(14.8, 48, 8, 128, 32768, "apache-2.0", hidden_size=5120),
    "Qwen/Qwen2.5-72B-Instruct": ModelFacts(72.7, 80, 8, 128, 32768, "qwen", hidden_size=8192),
    "google/gemma-2-2b-it": ModelFacts(2.61, 26, 4, 256, 8192, "gemma", True, hidden_size=2304),
    "google/gemma-2-9b-it": ModelFacts(9.24, 42, 8, 256, 8192, "gemma", True, hidden_size=3584),
    "microsoft/Phi-3-mini-4k-instruct": ModelFacts(3.82, 32, 32, 96, 4096, "mit", hidden_size=3072),
    "microsoft/phi-4": ModelFacts(14.7, 40, 10, 128, 16384, "mit", hidden_size=5120),
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": ModelFacts(1.1, 22, 4, 64, 2048, "apache-2.0", hidden_size=2048),
    # GGUF repositories for llama.cpp (the quantization is the file's): the facts of the model they quantize.
    "Qwen/Qwen2.5-1.5B-Instruct-GGUF": ModelFacts(1.54, 28, 2, 128, 32768, "apache-2.0", hidden_size=1536),
    "Qwen/Qwen2.5-0.5B-Instruct-GGUF": ModelFacts(0.49, 24, 2, 64, 32768, "apache-2.0", hidden_size=896),
    "microsoft/Phi-3-mini-4k-instruct-gguf": ModelFacts(3.82, 32, 32, 96, 4096, "mit", hidden_size=3072),
}


def as_label(text: str) -> str:
    """A value in the characters Google Cloud labels allow (lowercase, digits, '-', '_'), at most 63 long."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text.lower())[:63]


def model_id_of_label(label: str) -> str:
    """The catalog's Hugging Face id whose label form is `label` ('' when none is)."""
    return next((model_id for model_id in MODELS if as_label(model_id) == label), "")


def facts_of(tags: dict[str, str] | None) -> ModelFacts | None:
    """The facts of the model a resource's tags (or Google Cloud labels) name: `selfhost-model`, else, for a
    checkpoint of your own, the catalog model it was fine-tuned from (`selfhost-base`)."""
    tags = tags or {}
    for key in ("selfhost-model", "selfhost-base"):
        value = tags.get(key) or ""
        facts = MODELS.get(value) or MODELS.get(model_id_of_label(value))
        if facts is not None:
            return facts
    return None
