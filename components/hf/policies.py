"""Hugging Face's policy rule: no Inference Endpoint answers the internet unauthenticated.
`HuggingFace.policy_rules` (components/targets/huggingface.py) hands it to the registry; components/policies.py
runs it after the generic rules.

Pure: it reads only the resource type its endpoints have. (Importing it runs components/hf/__init__.py, which
loads the dynamic provider and `huggingface_hub`; the registry's merged mocks have loaded them already.)
"""

from __future__ import annotations

from collections.abc import Iterator

from ..cost_rules import Resource
from ..policy import Plan, Rule, rule_decorator

RULES: list[Rule] = []
rule = rule_decorator(RULES)


@rule("hf-endpoint-not-public", "Hugging Face Inference Endpoints require a token (authenticated) or PrivateLink "
      "(private); none answers the whole internet unauthenticated.", "critical",
      "Set the target's endpointType to authenticated or private (public needs allowPublic: true in the config "
      "and an exemption here).")
def _hf_not_public(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r in plan.of("pulumi-python:dynamic/hf:InferenceEndpoint"):
        if r.inputs.get("type") not in ("authenticated", "private"):
            yield r, f"endpoint type {r.inputs.get('type')!r}: anyone who finds the URL can run the model"
