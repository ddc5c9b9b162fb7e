"""Pay-per-token API prices, to answer "should we self-host?" against real alternatives.

Source: LiteLLM's model price table (github.com/BerriAI/litellm, model_prices_and_context_window.json,
input_cost_per_token and output_cost_per_token); prices of 2025, read 2026-11-29.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "LiteLLM model_prices_and_context_window.json (github.com/BerriAI/litellm, 2025)"
AS_OF = "2025"


@dataclass(frozen=True)
class ApiPrice:
    provider: str
    model: str
    usd_per_1m_input: float
    usd_per_1m_output: float
    source: str = SOURCE
    as_of: str = AS_OF

    def request_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.usd_per_1m_input + output_tokens * self.usd_per_1m_output) / 1e6


API_PRICES: dict[str, ApiPrice] = {
    "gpt-4o-mini": ApiPrice("OpenAI", "gpt-4o-mini", 0.15, 0.60),
    "claude-3-haiku": ApiPrice("Anthropic", "claude-3-haiku", 0.25, 1.25),
    "open-mistral-7b": ApiPrice("Mistral AI", "open-mistral-7b", 0.25, 0.25),
    "together-llama-3.1-8b": ApiPrice("Together AI", "Meta-Llama-3.1-8B-Instruct-Turbo", 0.18, 0.18),
}
