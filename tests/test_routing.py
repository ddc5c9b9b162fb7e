"""The hybrid router's config, generated from the shipped stacks' own endpoint records (the failover itself is
tested against the real LiteLLM proxy in tests/adapter/test_hybrid_router.py)."""

from __future__ import annotations

import pytest

from components.litellm import backends_from_endpoints, litellm_config


def test_on_prem_first_hugging_face_on_overflow(previews):
    records = {**previews["onprem"].outputs["endpoints"], **{f"burst-{k}": v for k, v in
                                                             previews["hf-dev"].outputs["endpoints"].items()}}
    backends = backends_from_endpoints(records, ["chat", "burst-chat"])
    assert [(b.name, b.priority) for b in backends] == [("chat", 1), ("burst-chat", 2)]
    assert backends[1].api_base.endswith(".endpoints.huggingface.cloud/v1")
    config = litellm_config("llama", backends)
    entries = config["model_list"]
    assert [e["model_name"] for e in entries] == ["llama", "llama"]
    assert [e["litellm_params"]["order"] for e in entries] == [1, 2]
    # Keys are named by file, never written: the router reads them from its mounted Secret.
    assert [e["litellm_params"]["api_key"] for e in entries] == [
        "os.environ/oidc/file//run/secrets/selfhost-router/chat.key",
        "os.environ/oidc/file//run/secrets/selfhost-router/burst-chat.key"]
    assert config["general_settings"]["master_key"] == "os.environ/oidc/file//run/secrets/selfhost-router/master_key"


def test_targets_the_router_cannot_reach_are_refused_with_the_reason(previews):
    records = previews["aws-prod"].outputs["endpoints"]
    with pytest.raises(ValueError, match="aws-sigv4"):
        backends_from_endpoints(records, ["chat"])
    with pytest.raises(ValueError, match="nope"):
        backends_from_endpoints(records, ["nope"])
