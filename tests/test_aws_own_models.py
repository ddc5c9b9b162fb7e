"""Your own models on AWS (issue 27): a fine-tuned checkpoint from the team's own `s3://bucket/prefix`, and LoRA
adapters, on SageMaker endpoints and EC2 GPU pools.

Each identity reads exactly the prefixes it serves (parsed from the policy JSON of the previewed plan); SageMaker
mounts the checkpoint in /opt/ml/model and each adapter as an additional model data source; the vLLM DLC takes one
adapter through its SM_VLLM_* variables, our image any number through SELFHOST_ADAPTERS; a pool copies the
team's weights onto its disk at boot and mounts them read-only. And the config errors for what cannot be served.
"""

from __future__ import annotations

import argparse
import base64
import json
import runpy
import shlex
from typing import Any

import pytest

from components.aws.iam import PrefixRead, owned_reads, read_statements
from components.aws.sagemaker import ADAPTERS_DIR, sm_vllm_environment
from components.catalog.engines import lora_flags
from components.config import ConfigError
from components.targets.sagemaker import DLC_ADAPTERS_REFUSED, MAX_ADAPTER_CHANNELS
from components.weights import parse
from selfhost.preview import run_program
from selfhost.project import stack_config

from .conftest import policy_doc
from .test_config import REV, as_pulumi, load_environment

ADAPTER_REV = "0123456789abcdef0123456789abcdef01234567"
BASE = "Qwen/Qwen2.5-1.5B-Instruct"
# A checkpoint of the team's own, fine-tuned from a catalog model: no revision, sized as its base.
OWN = {"name": "support", "id": "acme/qwen-support", "source": "s3://acme-ml/checkpoints/qwen-support/v2",
       "base": BASE, "maxContext": 8192}
HUB = {"name": "qwen", "id": BASE, "revision": REV, "maxContext": 8192}
S3_ADAPTER = {"name": "tickets", "source": "s3://acme-ml/adapters/tickets", "rank": 16}
HUB_ADAPTER = {"name": "sql", "id": "acme/qwen-sql-lora", "revision": ADAPTER_REV, "rank": 8}


def run_stack(project, stack: str, models: list[dict], **target: Any):
    """`stack` previewed through the real program with its models replaced and its first target edited."""
    cfg, secret_keys = stack_config(project, stack)
    targets = json.loads(cfg["selfhost-llm:targets"])
    targets[0].update(model=models[0]["name"], **target)
    cfg["selfhost-llm:models"] = json.dumps(models)
    cfg["selfhost-llm:targets"] = json.dumps(targets)
    return run_program(project.name, stack, cfg, secret_keys,
                       lambda: runpy.run_path(str(project.root / "__main__.py"), run_name="__main__"))


def only(p, token: str):
    (r,) = p.by_type(token)
    return r


def statements(policy) -> list[dict]:
    return policy_doc(policy.inputs["policy"])["Statement"]


def artifacts_bucket(p) -> str:
    (bucket,) = [b for b in p.by_type("aws:s3/bucket:Bucket") if b.name == f"{p.stack}-artifacts-bucket"]
    return bucket.computed["bucket"]


def execution_policy(p) -> list[dict]:
    """The SageMaker execution role's policy."""
    return statements(next(rp for rp in p.by_type("aws:iam/rolePolicy:RolePolicy")
                           if rp.name == "aws-dev-chat-execution-policy"))


def s3_statements_on(statements_: list[dict], bucket: str) -> list[dict]:
    """The statements that name `bucket` or anything in it."""
    arn = f"arn:aws:s3:::{bucket}"
    names = lambda r: r == arn or r.startswith(arn + "/")  # noqa: E731
    return [s for s in statements_ if any(names(r) for r in ([s["Resource"]] if isinstance(s["Resource"], str)
                                                             else s["Resource"]))]


def assert_reads_exactly(statements_: list[dict], bucket: str, *prefixes: str) -> None:
    """Objects under each prefix, listing only with them as the prefix: nothing else of the bucket."""
    found = s3_statements_on(statements_, bucket)
    assert len(found) == 2, found
    read, listing = sorted(found, key=lambda s: s["Action"])
    objects = [f"arn:aws:s3:::{bucket}/{p}/*" for p in prefixes]
    assert read["Action"] == "s3:GetObject" and read["Resource"] == (objects[0] if len(objects) == 1 else objects)
    assert listing["Action"] == "s3:ListBucket" and listing["Resource"] == f"arn:aws:s3:::{bucket}"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [v for p in prefixes for v in (f"{p}/*", f"{p}/")]}}


def problems(models: list[dict], target: dict, secret_keys=()) -> list[str]:
    cfg = {"aws:region": "us-east-1", "selfhost-llm:network": {"nat": "single"}, "selfhost-llm:models": models,
           "selfhost-llm:targets": [{"name": "chat", "model": models[0]["name"], **target}]}
    with pytest.raises(ConfigError) as info:
        load_environment("test", as_pulumi(cfg), set(secret_keys))
    return [str(p) for p in info.value.problems]


SAGEMAKER = {"kind": "sagemaker", "instanceType": "ml.g5.2xlarge"}


# ---------------------------------------------------------------------------------------------------------------
# SageMaker


@pytest.fixture(scope="module")
def own_checkpoint(project):
    return run_stack(project, "aws-dev", [OWN])


def test_sagemaker_mounts_the_teams_checkpoint_from_its_prefix_isolated_and_without_a_token(own_checkpoint):
    p = own_checkpoint
    model = only(p, "aws:sagemaker/model:Model").inputs
    container = model["primaryContainer"]
    assert container["modelDataSource"] == {"s3DataSources": [
        {"s3Uri": "s3://acme-ml/checkpoints/qwen-support/v2/", "s3DataType": "S3Prefix", "compressionType": "None"}]}
    assert "additionalModelDataSources" not in container
    assert model["enableNetworkIsolation"] is True  # the default for weights from S3: no network at all
    env = container["environment"]
    assert env["SM_VLLM_MODEL"] == "/opt/ml/model" and "SM_VLLM_REVISION" not in env
    assert env["SM_VLLM_SERVED_MODEL_NAME"] == "acme/qwen-support"  # what callers and the router send
    assert "HF_TOKEN" not in env
    assert p.by_type("command:local:Command") == []  # nothing to stage: the weights are where the team keeps them
    (sg,) = [g for g in p.by_type("aws:ec2/securityGroup:SecurityGroup") if g.name == "aws-dev-chat-sg"]
    assert all("0.0.0.0/0" not in rule.get("cidrBlocks", []) for rule in sg.inputs["egress"])
    variant = only(p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs["productionVariants"][0]
    assert variant["modelDataDownloadTimeoutInSeconds"] == variant["containerStartupHealthCheckTimeoutInSeconds"]


def test_the_execution_role_reads_exactly_the_checkpoints_prefix(own_checkpoint):
    found = execution_policy(own_checkpoint)
    assert_reads_exactly(found, "acme-ml", "checkpoints/qwen-support/v2")
    sids = {s["Sid"] for s in found}
    assert {"ReadWeightsInAcmeMl", "ListWeightsInAcmeMl"} <= sids
    # Nothing staged in the stack's bucket, no token to read.
    assert not sids & {"ReadModelWeights", "ListModelWeights", "ReadHfToken"}


def test_the_teams_own_checkpoint_is_not_priced_as_stored_in_the_stacks_bucket(own_checkpoint):
    from components.cost import UNKNOWN, Resource, resources_from_preview
    from components.schema import Usage
    from components.targets.sagemaker import SageMaker

    models = [r for r in resources_from_preview(own_checkpoint.to_json()) if r.type == "aws:sagemaker/model:Model"]
    assert SageMaker().stored_bytes(models, Usage.from_wire({})) == 0  # the team's bucket: not this stack's bill
    # Weights staged in the stack's bucket are, whether its name is known yet (the in-program estimate) or not.
    staged = [Resource(r.type, r.name, r.component, {**r.inputs, "tags": {"selfhost-model": BASE},
                                                     "primaryContainer": {"modelDataSource": {
                                                         "s3DataSources": [{"s3Uri": uri}]}}})
              for r in models for uri in (UNKNOWN, f"s3://stack-bucket/models/{BASE}/{REV}/")]
    one = SageMaker().stored_bytes(staged[:1], Usage.from_wire({}))
    assert one > 2e9 and SageMaker().stored_bytes(staged, Usage.from_wire({})) == 2 * one


@pytest.fixture(scope="module")
def adapters_on_our_image(project):
    return run_stack(project, "aws-dev", [{**HUB, "adapters": [S3_ADAPTER, HUB_ADAPTER]}], image="selfhost")


def test_each_adapter_is_a_model_data_channel_of_its_own(adapters_on_our_image):
    p = adapters_on_our_image
    container = only(p, "aws:sagemaker/model:Model").inputs["primaryContainer"]
    bucket = artifacts_bucket(p)
    assert container["additionalModelDataSources"] == [
        {"channelName": "tickets", "s3DataSources": [
            {"s3Uri": "s3://acme-ml/adapters/tickets/", "s3DataType": "S3Prefix", "compressionType": "None"}]},
        # From the Hub: staged into the stack's bucket, where SageMaker mounts it from.
        {"channelName": "sql", "s3DataSources": [
            {"s3Uri": f"s3://{bucket}/models/acme/qwen-sql-lora/{ADAPTER_REV}/", "s3DataType": "S3Prefix",
             "compressionType": "None"}]},
    ]
    (stage,) = p.by_type("command:local:Command")
    words = shlex.split(stage.inputs["create"])
    assert words[words.index("--repo") + 1] == "acme/qwen-sql-lora"
    assert words[words.index("--revision") + 1] == ADAPTER_REV
    assert words[words.index("--prefix") + 1] == f"models/acme/qwen-sql-lora/{ADAPTER_REV}"
    model = only(p, "aws:sagemaker/model:Model")
    assert any("adapter-sql" in d for d in model.dependencies)  # mounted only once staged


def test_our_image_gets_the_channels_as_selfhost_adapters_and_the_engine_its_lora_slots(adapters_on_our_image):
    env = only(adapters_on_our_image, "aws:sagemaker/model:Model").inputs["primaryContainer"]["environment"]
    assert env["SELFHOST_ADAPTERS"] == f"tickets={ADAPTERS_DIR}/tickets,sql={ADAPTERS_DIR}/sql"
    assert ADAPTERS_DIR == "/opt/ml/additional-model-data-sources"
    args = env["SELFHOST_ENGINE_ARGS"]
    assert "--max-loras 2 --max-lora-rank 16" in args
    # Our adapter adds --enable-lora and --lora-modules itself, from SELFHOST_ADAPTERS.
    assert "--enable-lora" not in args and "--lora-modules" not in args


def test_the_role_reads_each_adapters_prefix_and_the_staged_one(adapters_on_our_image):
    p = adapters_on_our_image
    found = execution_policy(p)
    assert_reads_exactly(found, "acme-ml", "adapters/tickets")
    bucket = artifacts_bucket(p)
    by_sid = {s["Sid"]: s for s in found}
    assert by_sid["ReadModelWeights"]["Resource"] == f"arn:aws:s3:::{bucket}/models/acme/qwen-sql-lora/{ADAPTER_REV}/*"
    assert by_sid["ListModelWeights"]["Condition"]["StringLike"]["s3:prefix"] == [
        f"models/acme/qwen-sql-lora/{ADAPTER_REV}/*", f"models/acme/qwen-sql-lora/{ADAPTER_REV}/"]


def test_the_vllm_dlc_gets_one_adapter_as_its_sm_vllm_variables(project):
    p = run_stack(project, "aws-dev", [{**OWN, "adapters": [S3_ADAPTER]}])
    env = only(p, "aws:sagemaker/model:Model").inputs["primaryContainer"]["environment"]
    assert env["SM_VLLM_ENABLE_LORA"] == ""  # a switch: the entrypoint passes `--enable-lora` alone
    assert env["SM_VLLM_LORA_MODULES"] == f"tickets={ADAPTERS_DIR}/tickets"
    assert (env["SM_VLLM_MAX_LORAS"], env["SM_VLLM_MAX_LORA_RANK"]) == ("1", "16")
    assert_reads_exactly(execution_policy(p), "acme-ml",
                         "checkpoints/qwen-support/v2", "adapters/tickets")


def _dlc_argv(env: dict[str, str]) -> list[str]:
    """The argv the HF vLLM DLC's entrypoint builds from SM_VLLM_* (sagemaker_entrypoint.sh, described in
    components.aws.sagemaker.sm_vllm_environment): `--<flag>`, then the value as one argument unless empty."""
    argv: list[str] = []
    for key, value in env.items():
        argv.append("--" + key.removeprefix("SM_VLLM_").lower().replace("_", "-"))
        if value:
            argv.append(value)
    return argv


def _vllm_lora_modules(items: list[str]) -> list[tuple[str, str]]:
    """vLLM's LoRAParserAction for the `name=path` form (vllm/entrypoints/openai/cli_args.py)."""
    out = []
    for item in items:
        name, path = item.split("=")
        out.append((name, path))
    return out


def test_the_dlc_entrypoint_passes_one_adapter_and_would_break_two():
    parser = argparse.ArgumentParser()
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--lora-modules", nargs="+")
    parser.add_argument("--max-loras")
    parser.add_argument("--max-lora-rank")
    one = sm_vllm_environment(lora_flags(1, 16, (("tickets", f"{ADAPTERS_DIR}/tickets"),)))
    parsed = parser.parse_args(_dlc_argv(one))
    assert parsed.enable_lora and _vllm_lora_modules(parsed.lora_modules) == [("tickets", f"{ADAPTERS_DIR}/tickets")]
    # Two adapters would be one argument: vLLM cannot split it, so the function refuses to write it.
    with pytest.raises(ValueError, match="one value"):
        sm_vllm_environment(lora_flags(2, 16, (("a", "/x"), ("b", "/y"))))
    with pytest.raises(ValueError):
        _vllm_lora_modules(["a=/x b=/y"])


def test_more_adapters_than_sagemaker_has_channels_is_a_config_error():
    many = [{"name": f"a{i}", "source": f"s3://acme-ml/adapters/a{i}", "rank": 8}
            for i in range(MAX_ADAPTER_CHANNELS + 1)]
    [problem] = problems([{**HUB, "adapters": many}], {**SAGEMAKER, "image": "selfhost"})
    assert problem.startswith("selfhost-llm:models[0].adapters: ")
    assert "cannot serve LoRA adapters here: 6 adapters" in problem and "at most 5" in problem


def test_more_than_one_adapter_on_the_vllm_dlc_is_a_config_error_that_says_why():
    [problem] = problems([{**HUB, "adapters": [S3_ADAPTER, HUB_ADAPTER]}], SAGEMAKER)
    assert problem.startswith("selfhost-llm:models[0].adapters: [\"tickets\", \"sql\"]: sagemaker targets "
                              "(targets[0]) cannot serve LoRA adapters here: ")
    assert DLC_ADAPTERS_REFUSED in problem and "image: selfhost" in problem


def test_a_google_cloud_bucket_is_not_a_source_sagemaker_reads():
    [problem] = problems([{**OWN, "source": "gs://acme-ml/checkpoints/qwen-support"}], SAGEMAKER)
    assert problem == ("selfhost-llm:models[0].source: 'gs://acme-ml/checkpoints/qwen-support': sagemaker targets "
                       "(targets[0]) cannot read weights there; allowed: hub, s3 (the stack's artifacts bucket), "
                       "s3://bucket/prefix")


def test_an_adapter_in_the_stacks_bucket_names_no_prefix():
    [problem] = problems([{**HUB, "adapters": [{"name": "tickets", "source": "s3", "rank": 8}]}], SAGEMAKER)
    assert problem.startswith("selfhost-llm:models[0].adapters[0].source: 's3': an adapter in the stack's bucket "
                              "names no prefix")


# ---------------------------------------------------------------------------------------------------------------
# GPU pools: the aws-pool stack serves a fine-tuned checkpoint from its own bucket


CHECKPOINT_BUCKET, CHECKPOINT_PREFIX = "ml-platform-checkpoints", "llama-3.1-8b-support/2026-12-01"


def boot_script(p) -> str:
    return base64.b64decode(only(p, "aws:ec2/launchTemplate:LaunchTemplate").inputs["userData"]).decode()


def docker_run(script: str) -> list[str]:
    (line,) = [line for line in script.splitlines() if line.startswith("docker run")]
    return shlex.split(line.replace("$(cat /var/lib/cloud/data/instance-id)", "ID"))


def docker_env(words: list[str]) -> dict[str, str]:
    return dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "-e" and "=" in words[i + 1])


def pool_policy(p) -> list[dict]:
    return statements(next(rp for rp in p.by_type("aws:iam/rolePolicy:RolePolicy")
                           if rp.name == "aws-pool-chat-policy"))


def test_the_pool_stack_serves_a_checkpoint_of_its_own_bucket(project):
    cfg, _ = stack_config(project, "aws-pool")
    (model,) = json.loads(cfg["selfhost-llm:models"])
    location = parse(model["source"])
    assert (location.scheme, location.bucket, location.prefix) == ("s3", CHECKPOINT_BUCKET, CHECKPOINT_PREFIX)
    assert "revision" not in model and model["base"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert "selfhost-llm:hfToken" not in cfg  # nothing comes from the Hub: no token


def test_the_pool_instances_copy_the_checkpoint_at_boot_and_mount_it_read_only(previews):
    script = boot_script(previews["aws-pool"])
    lines = script.splitlines()
    sync = (f"aws s3 sync --only-show-errors --region us-east-1 s3://{CHECKPOINT_BUCKET}/{CHECKPOINT_PREFIX}/ "
            "/opt/dlami/nvme/weights/model")
    assert sync in lines
    assert lines.index(sync) < next(i for i, line in enumerate(lines) if line.startswith("docker run"))
    words = docker_run(script)
    assert "/opt/dlami/nvme/weights:/weights:ro" in [words[i + 1] for i, w in enumerate(words) if w == "-v"]
    env = docker_env(words)
    assert env["SELFHOST_MODEL"] == "/weights/model"  # the weights our adapter starts the engine with
    assert env["SELFHOST_MODEL_NAME"] == "ml-platform/llama-3.1-8b-support"  # what the router sends
    assert "--revision" not in env["SELFHOST_ENGINE_ARGS"] and "SELFHOST_ADAPTERS" not in env
    assert "secretsmanager get-secret-value" in script  # the callers' keys, still
    assert "HF_TOKEN_PATH" not in env  # but no Hugging Face token: nothing comes from the Hub


def test_the_pool_instance_role_reads_exactly_the_checkpoints_prefix(previews):
    found = pool_policy(previews["aws-pool"])
    assert_reads_exactly(found, CHECKPOINT_BUCKET, CHECKPOINT_PREFIX)
    assert "ReadHfToken" not in {s["Sid"] for s in found}


def test_pool_adapters_from_the_hub_are_downloaded_and_from_s3_copied(project):
    cfg, _ = stack_config(project, "aws-pool")
    (model,) = json.loads(cfg["selfhost-llm:models"])
    p = run_stack(project, "aws-pool", [{**model, "adapters": [S3_ADAPTER, HUB_ADAPTER]}])
    script = boot_script(p)
    assert ("aws s3 sync --only-show-errors --region us-east-1 s3://acme-ml/adapters/tickets/ "
            "/opt/dlami/nvme/weights/adapters/tickets") in script.splitlines()
    env = docker_env(docker_run(script))
    assert env["SELFHOST_ADAPTERS"] == f"tickets=/weights/adapters/tickets,sql=hf://acme/qwen-sql-lora@{ADAPTER_REV}"
    assert "--max-loras 2 --max-lora-rank 16" in env["SELFHOST_ENGINE_ARGS"]
    assert "--enable-lora" not in env["SELFHOST_ENGINE_ARGS"]
    found = pool_policy(p)
    assert_reads_exactly(found, CHECKPOINT_BUCKET, CHECKPOINT_PREFIX)
    assert_reads_exactly(found, "acme-ml", "adapters/tickets")


def test_a_pool_reads_no_google_cloud_bucket():
    [problem] = problems([{**OWN, "source": "gs://acme-ml/checkpoints/qwen-support"}],
                         {"kind": "aws-pool", "instanceTypes": ["g6.xlarge"]})
    assert problem.endswith("aws-pool targets (targets[0]) cannot read weights there; allowed: hub, "
                            "s3://bucket/prefix")


# ---------------------------------------------------------------------------------------------------------------
# The grants, on their own


def test_reads_are_grouped_by_bucket_and_a_whole_bucket_has_no_prefix_condition():
    reads = owned_reads([parse("s3://b-two/x"), parse("hub"), parse("s3://a.one/p/q"), parse("s3://b-two/y"),
                         parse("s3://b-two/x/")])
    assert reads == [PrefixRead("WeightsInAOne", "arn:aws:s3:::a.one", ("p/q",)),
                     PrefixRead("WeightsInBTwo", "arn:aws:s3:::b-two", ("x", "y"))]
    (whole,) = owned_reads([parse("s3://whole-bucket")])
    _, listing = read_statements([whole])
    assert listing == {"Sid": "ListWeightsInWholeBucket", "Effect": "Allow", "Action": "s3:ListBucket",
                       "Resource": "arn:aws:s3:::whole-bucket"}
