"""Our serving image: built from containers/ and pushed by `pulumi up`, then used by digest (issue 4)."""

from __future__ import annotations

import runpy

import pytest

from components.cost import NOT_ESTIMATED
from components.serving_image import CONTAINERS, IMAGES, content_tag
from selfhost.preview import run_program
from selfhost.project import stack_config


def outside_router(p, token: str) -> list:
    """The resources of type `token` outside the stack's router (its component and what it holds)."""
    router = {r.urn for r in p.resources if r.type in ("selfhost:aws:Router", "selfhost:gcp:Router")}
    size = -1
    while size != len(router):
        size = len(router)
        router |= {r.urn for r in p.resources if r.parent in router}
    return [r for r in p.by_type(token) if r.urn not in router]


def run_stack(project, stack: str, edit, section: str = "targets") -> object:
    """The stack previewed with `edit` applied to each entry of its `section` (targets or models)."""
    config, secret_keys = stack_config(project, stack)
    import json

    entries = json.loads(config[f"selfhost-llm:{section}"])
    for entry in entries:
        edit(entry)
    config[f"selfhost-llm:{section}"] = json.dumps(entries)
    return run_program(project.name, stack, config, secret_keys,
                       lambda: runpy.run_path(str(project.root / "__main__.py"), run_name="__main__"))


def test_sagemaker_uses_our_image_from_ecr_by_digest(project):
    p = run_stack(project, "aws-prod", lambda t: t.update(image="selfhost"))
    (repo,) = p.by_type("aws:ecr/repository:Repository")
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    (key,) = p.by_type("aws:kms/key:Key")
    assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key.computed["arn"]}]
    (image,) = p.by_type("docker-build:index:Image")
    assert image.inputs["push"] is True and image.inputs["buildArgs"] == {"APP_UID": "0"}  # SageMaker runs root
    assert image.inputs["dockerfile"]["location"].endswith("containers/vllm/Dockerfile")
    assert image.inputs["tags"] == [f"{repo.computed['repositoryUrl']}:{content_tag()}"]
    assert image.secret_paths == ["registries[0].password"]  # the registry login stays secret
    (model,) = p.by_type("aws:sagemaker/model:Model")
    container = model.inputs["primaryContainer"]
    assert container["image"] == f"{repo.computed['repositoryUrl']}@{image.computed['digest']}"
    env = container["environment"]
    # aws-prod stages its weights in the bucket: the adapter serves the folder SageMaker puts them in, with no
    # revision to fetch and no token.
    assert env["SELFHOST_ENGINE"] == "vllm" and env["HF_MODEL_ID"] == "/opt/ml/model"
    assert "--revision" not in env["SELFHOST_ENGINE_ARGS"] and "--max-model-len 8192" in env["SELFHOST_ENGINE_ARGS"]
    assert "SM_VLLM_MODEL" not in env and "HF_TOKEN" not in env
    # The role may pull from our repository, and from nothing else; the router's roles never do.
    (policy,) = [r for r in outside_router(p, "aws:iam/rolePolicy:RolePolicy") if "execution" in r.name]
    arn = repo.computed["arn"]
    assert f'"Resource": "{arn}"' in policy.inputs["policy"]
    router_policies = [r for r in p.by_type("aws:iam/rolePolicy:RolePolicy") if r.name.startswith("aws-prod-router-")]
    assert len(router_policies) == 2 and all(arn not in r.inputs["policy"] for r in router_policies)
    (config,) = p.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert config.inputs["productionVariants"][0]["inferenceAmiVersion"] == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert p.outputs["endpoints"]["chat"]["image"] == container["image"]


def test_vertex_uses_our_image_from_artifact_registry(project):
    p = run_stack(project, "gcp-prod", lambda t: t.update(image="selfhost"))
    # Ours, beside the router's (a remote repository of LiteLLM's registry).
    (repo,) = outside_router(p, "gcp:artifactregistry/repository:Repository")
    assert repo.inputs["format"] == "DOCKER" and repo.inputs["dockerConfig"] == {"immutableTags": True}
    (reader,) = p.by_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    (account,) = outside_router(p, "gcp:serviceaccount/account:Account")
    assert reader.inputs["role"] == "roles/artifactregistry.reader"
    assert reader.inputs["member"] == account.computed["member"]
    (image,) = p.by_type("docker-build:index:Image")
    assert "buildArgs" not in image.inputs  # non-root default outside SageMaker
    (deployment,) = p.by_type("gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment")
    spec = deployment.inputs["modelConfig"]["containerSpec"]
    assert spec["imageUri"].startswith(
        "us-central1-docker.pkg.dev/acme-llm-prod/gcp-prod-serving-images/selfhost-vllm@sha256:")
    assert spec["args"] == ["vertex"] and "commands" not in spec
    assert (spec["predictRoute"], spec["healthRoute"]) == ("/predict", "/health")
    env = {e["name"]: e["value"] for e in spec["envs"]}
    assert env["SELFHOST_ENGINE"] == "vllm"
    assert "--revision 0e9e39f249a16976918f6564b8830bc894c89659" in env["SELFHOST_ENGINE_ARGS"]


def test_content_tag_follows_the_build_context(tmp_path):
    (tmp_path / "a").write_text("one")
    first = content_tag(tmp_path)
    assert content_tag(tmp_path) == first
    (tmp_path / "a").write_text("two")
    assert content_tag(tmp_path) != first
    assert content_tag().startswith("src-") and (CONTAINERS / IMAGES["vllm"].dockerfile).is_file()
    # What the build does not see (.dockerignore) does not change the tag.
    (tmp_path / ".dockerignore").write_text("# docs\nREADME.md\n**/__pycache__\n")
    (tmp_path / "README.md").write_text("x")
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__pycache__" / "m.pyc").write_text("x")
    tagged = content_tag(tmp_path)
    (tmp_path / "README.md").write_text("y")
    (tmp_path / "pkg" / "__pycache__" / "m.pyc").write_text("y")
    assert content_tag(tmp_path) == tagged
    (tmp_path / "pkg" / "m.py").write_text("z")
    assert content_tag(tmp_path) != tagged


def test_registry_storage_is_named_as_not_estimated():
    assert any("registry storage" in n for n in NOT_ESTIMATED)


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod", "gcp-prod"])
def test_stacks_keep_the_managed_images(previews, stack):
    assert previews[stack].by_type("docker-build:index:Image") == []


def test_an_fp8_kv_cache_reaches_the_engine_and_the_plan(project, previews):
    """`kvCacheDtype: fp8` is vLLM's --kv-cache-dtype on every target (the SageMaker DLC's SM_VLLM_ variable, our
    image's engine flags, Vertex's container arguments), is tagged on the serving resource, and the cost engine
    plans about twice the concurrent requests with it: half the KV bytes per token."""
    from components.catalog.pricing import lookup
    from selfhost.cost_report import price_preview

    def fp8(m: dict) -> None:
        m["kvCacheDtype"] = "fp8"

    managed = run_stack(project, "aws-prod", fp8, "models")
    (model,) = managed.by_type("aws:sagemaker/model:Model")
    assert model.inputs["primaryContainer"]["environment"]["SM_VLLM_KV_CACHE_DTYPE"] == "fp8"
    (config,) = managed.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert config.inputs["tags"]["selfhost-kv-cache"] == "fp8"
    before = price_preview(previews["aws-prod"].to_json(), lookup).serving[0].plan.capacity
    after = price_preview(managed.to_json(), lookup).serving[0].plan.capacity
    assert before is not None and after is not None
    assert 1.8 < after.saturation.concurrency / before.saturation.concurrency < 2.2
    vertex = run_stack(project, "gcp-prod", fp8, "models")
    (deployment,) = vertex.by_type("gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment")
    assert "--kv-cache-dtype=fp8" in deployment.inputs["modelConfig"]["containerSpec"]["args"]
    vertex_after = price_preview(vertex.to_json(), lookup).serving[0].plan.capacity
    vertex_before = price_preview(previews["gcp-prod"].to_json(), lookup).serving[0].plan.capacity
    assert vertex_after is not None and vertex_before is not None
    assert vertex_after.saturation.concurrency > 1.8 * vertex_before.saturation.concurrency
