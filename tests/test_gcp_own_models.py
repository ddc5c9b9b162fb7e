"""Issue 27 on Google Cloud: weights of your own in Cloud Storage and LoRA adapters on the `gcp-pool` kind (the
boot script copies the prefix to the VM's disk; the VMs' identity reads exactly its prefixes), and on the `vertex`
kind pinned Hub adapters on our image, while gs:// is refused with the reason (Vertex's serving identity cannot be
granted a bucket)."""

from __future__ import annotations

import json
import runpy
import shlex

import pytest

from components.config import ConfigError
from components.gcp.iam import prefix_condition
from components.weights import parse

from .test_config import REV, as_pulumi, load_environment

GARDEN = "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"
GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
BASE = "meta-llama/Llama-3.1-8B-Instruct"
OWN = {"name": "support", "id": "acme/llama-3.1-8b-support", "source": "gs://acme-models/llama/support-v3",
       "base": BASE, "maxContext": 8192}
GS_ADAPTER = {"name": "sql", "source": "gs://acme-models/adapters/sql", "rank": 16}
HUB_ADAPTER = {"name": "tone", "id": "acme/tone-lora", "revision": REV, "rank": 8}
MODEL_PREFIX = 'resource.name.startsWith("projects/_/buckets/acme-models/objects/llama/support-v3/")'


def preview(project, stack: str, model: dict, **target_changes):
    """The `stack` previewed through the real program with its one model replaced by `model` (named like the
    stack's, so its targets serve it) and `target_changes` made to its targets."""
    from selfhost.preview import run_program
    from selfhost.project import stack_config

    cfg, secret_keys = stack_config(project, stack)
    (current,) = json.loads(cfg["selfhost-llm:models"])
    cfg["selfhost-llm:models"] = json.dumps([{**model, "name": current["name"]}])
    targets = json.loads(cfg["selfhost-llm:targets"])
    for t in targets:
        t.update(target_changes)
    cfg["selfhost-llm:targets"] = json.dumps(targets)
    return run_program(project.name, stack, cfg, secret_keys,
                       lambda: runpy.run_path(str(project.root / "__main__.py"), run_name="__main__"))


def only(p, token):
    (r,) = p.by_type(token)
    return r


def grants(p) -> dict[str, dict]:
    """The bucket grants by the prefix their condition names."""
    return {g.inputs["condition"]["description"].rsplit(" reads ", 1)[1].removesuffix(" only"): g.inputs
            for g in p.by_type(GRANT)}


# ---------------------------------------------------------------------------------------------------------
# Pure: the condition


def test_the_condition_is_the_prefix_and_listings_under_it():
    assert prefix_condition(parse("gs://acme-models/llama/support-v3")) == (
        f'{MODEL_PREFIX} || api.getAttribute("storage.googleapis.com/objectListPrefix", "")'
        '.startsWith("llama/support-v3/")')
    # A sibling prefix that merely starts the same (support-v30) is not under it: the condition ends in '/'.
    assert '"projects/_/buckets/acme-models/objects/llama/support-v3/"' in prefix_condition(
        parse("gs://acme-models/llama/support-v3/"))
    assert prefix_condition(parse("gs://acme-models")) == 'resource.name.startsWith("projects/_/buckets/acme-models")'


# ---------------------------------------------------------------------------------------------------------
# vertex


def test_vertex_own_image_gets_hub_adapters_pinned_and_only_the_lora_sizes(project):
    p = preview(project, "gcp-prod", {"id": BASE, "revision": REV, "maxContext": 8192, "adapters": [HUB_ADAPTER]},
                image="selfhost")
    container = only(p, GARDEN).inputs["modelConfig"]["containerSpec"]
    env = {e["name"]: e["value"] for e in container["envs"]}
    assert env["SELFHOST_ADAPTERS"] == f"tone=hf://acme/tone-lora@{REV}"
    # Our adapter adds --enable-lora and --lora-modules itself.
    assert "--max-loras 1 --max-lora-rank 8" in env["SELFHOST_ENGINE_ARGS"]
    assert "--lora-modules" not in env["SELFHOST_ENGINE_ARGS"] and "--enable-lora" not in env["SELFHOST_ENGINE_ARGS"]
    assert p.by_type(GRANT) == []


def vertex_problems(model: dict, **target) -> list[str]:
    cfg = {"gcp:project": "acme-test-123", "gcp:region": "us-central1", "selfhost-llm:network": {"nat": "single"},
           "selfhost-llm:models": [{"name": "mine", **model}],
           "selfhost-llm:targets": [{"kind": "vertex", "name": "chat", "model": "mine", "machineType": "g2-standard-12",
                                     "acceleratorType": "NVIDIA_L4", **target}]}
    with pytest.raises(ConfigError) as info:
        load_environment("test", as_pulumi(cfg), set())
    return [str(p) for p in info.value.problems]


FACTS = {"paramsBillion": 8.0, "layers": 32, "kvHeads": 8, "headDim": 128, "maxContext": 131072}


@pytest.mark.parametrize("image", ["managed", "selfhost"])
def test_vertex_refuses_gs_weights_saying_why(image):
    (problem,) = vertex_problems({k: v for k, v in OWN.items() if k != "name"}, image=image)
    assert problem.startswith("selfhost-llm:models[0].source: 'gs://acme-models/llama/support-v3': vertex targets "
                              "(targets[0]) cannot read weights there: Vertex runs the serving container as a "
                              "Vertex-managed service account")
    assert problem.endswith("; allowed: hub")


def test_vertex_refuses_hub_adapters_on_googles_image():
    (problem,) = vertex_problems({"id": "Qwen/Qwen2.5-7B-Instruct", "revision": REV, "adapters": [HUB_ADAPTER]})
    assert problem.startswith("selfhost-llm:models[0].adapters: [\"tone\"]: vertex targets (targets[0]) cannot serve "
                              "LoRA adapters here: Google's vLLM image fetches a Hub adapter by repository id alone, "
                              "at its newest commit, not the pinned revision")


def test_vertex_refuses_gs_adapters_saying_why():
    (problem,) = vertex_problems({"id": "Qwen/Qwen2.5-7B-Instruct", "revision": REV, "adapters": [GS_ADAPTER]},
                                 image="selfhost")
    assert problem.startswith("selfhost-llm:models[0].adapters[0].source: 'gs://acme-models/adapters/sql': vertex "
                              "targets (targets[0]) cannot read weights there: Vertex runs the serving container")


def test_vertex_cannot_read_s3():
    (problem,) = vertex_problems({k: v for k, v in OWN.items() if k != "name"} | {"source": "s3://acme-models/x"})
    assert problem == ("selfhost-llm:models[0].source: 's3://acme-models/x': vertex targets (targets[0]) cannot read "
                       "weights there; allowed: hub")


# ---------------------------------------------------------------------------------------------------------
# gcp-pool


def boot(p) -> str:
    return only(p, TEMPLATE).inputs["metadata"]["startup-script"]


def container_env(script: str) -> dict[str, str]:
    words = shlex.split(script.rstrip("\n").split("\n")[-1])
    return dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "-e")


@pytest.fixture(scope="module")
def pool_own(project):
    return preview(project, "gcp-pool", {**OWN, "adapters": [GS_ADAPTER]})


def test_the_pool_copies_the_prefix_before_the_container_and_serves_the_copy(pool_own):
    script = boot(pool_own)
    lines = script.split("\n")
    copy = ("mkdir -p /var/lib/selfhost/weights/model && gcloud storage cp --recursive --no-clobber "
            "'gs://acme-models/llama/support-v3/*' /var/lib/selfhost/weights/model/")
    adapter = ("mkdir -p /var/lib/selfhost/weights/adapters/sql && gcloud storage cp --recursive --no-clobber "
               "'gs://acme-models/adapters/sql/*' /var/lib/selfhost/weights/adapters/sql/")
    run = next(i for i, line in enumerate(lines) if line.startswith("docker run"))
    assert lines.index(copy) < run and lines.index(adapter) < run
    # The copies are mounted read-only; the container reads them with no Google credentials of its own.
    assert "-v /var/lib/selfhost/weights:/weights:ro" in lines[run]
    env = container_env(script)
    assert env["SELFHOST_MODEL"] == "/weights/model" and env["SELFHOST_MODEL_NAME"] == OWN["id"]
    assert env["SELFHOST_ADAPTERS"] == "sql=/weights/adapters/sql"
    assert "--revision" not in env["SELFHOST_ENGINE_ARGS"]
    assert "--max-loras 1 --max-lora-rank 16" in env["SELFHOST_ENGINE_ARGS"]
    # Nothing comes from the Hub: the VM never reads the token.
    assert "hf-token" not in script and "HF_TOKEN_PATH" not in script


def test_the_pool_service_account_reads_exactly_the_prefixes(pool_own):
    found = grants(pool_own)
    assert set(found) == {"gs://acme-models/llama/support-v3", "gs://acme-models/adapters/sql"}
    email = only(pool_own, TEMPLATE).inputs["serviceAccount"]["email"]
    for source, grant in found.items():
        assert grant["member"] == f"serviceAccount:{email}"
        assert grant["condition"]["expression"] == prefix_condition(parse(source))
    # The VMs boot once the grants exist.
    template = only(pool_own, TEMPLATE)
    assert {g.urn for g in pool_own.by_type(GRANT)} <= set(template.dependencies)


def test_the_grants_cost_nothing(pool_own):
    from components.catalog.pricing import lookup
    from components.cost import estimate, resources_from_preview
    from components.schema import Usage

    est = estimate(resources_from_preview(pool_own.to_json()), {"gcp": "us-central1"}, Usage.from_wire({}), lookup)
    assert GRANT not in est.unpriced


def test_a_pool_with_hub_adapters_reads_the_token_and_pins_them(project):
    p = preview(project, "gcp-pool", {"id": BASE, "revision": REV, "maxContext": 8192, "adapters": [HUB_ADAPTER]})
    script = boot(p)
    env = container_env(script)
    assert env["SELFHOST_ADAPTERS"] == f"tone=hf://acme/tone-lora@{REV}"
    assert f"--revision {REV}" in env["SELFHOST_ENGINE_ARGS"] and "SELFHOST_MODEL" not in env
    assert "HF_TOKEN_PATH" in script and p.by_type(GRANT) == []
