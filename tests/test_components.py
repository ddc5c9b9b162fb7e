"""Components instantiated on their own under mocks, for the choices the stacks in stacks/ do not exercise."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from pydantic import ValidationError

from components.aws.foundation import AwsFoundation
from components.aws.network import Network, NetworkArgs
from components.aws.sagemaker import (
    AlarmThresholds,
    BlueGreenUpdate,
    SageMakerEndpoint,
    SageMakerEndpointArgs,
    VariantScaling,
    container_environment,
)
from components.catalog.images import sagemaker_image
from components.catalog.sagemaker_instances import instances_in
from components.schema import ModelSpec
from components.targets.sagemaker import SageMakerTarget
from selfhost.preview import run_program

from .conftest import policy_doc

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
TAGS = {"environment": "t", "owner": "o", "managed-by": "pulumi", "project": "selfhost-llm"}


def run(program):
    return run_program("selfhost-llm", "t", {"aws:region": "us-east-1"}, [], program)


@pytest.mark.parametrize("nat, nat_gateways, public_subnets", [("none", 0, 0), ("single", 1, 1), ("per-az", 3, 3)])
def test_network_nat_modes(nat, nat_gateways, public_subnets):
    p = run(lambda: Network("n", NetworkArgs(region="us-east-1", cidr="10.0.0.0/16", availability_zones=ZONES,
                                             nat=nat, flow_log_retention_days=30, kms_key_arn=KEY, tags=TAGS)))
    assert len(p.by_type("aws:ec2/natGateway:NatGateway")) == nat_gateways
    assert len(p.by_type("aws:ec2/internetGateway:InternetGateway")) == min(nat_gateways, 1)
    subnets = p.by_type("aws:ec2/subnet:Subnet")
    assert sum("-public-" in s.name for s in subnets) == public_subnets
    private = sorted(s.name for s in subnets if "-private-" in s.name)
    # Stable names keyed by zone, not by position.
    assert private == [f"n-private-{z}" for z in ZONES]
    cidrs = [s.inputs["cidrBlock"] for s in subnets]
    assert len(set(cidrs)) == len(cidrs)
    private_routes = [rt for rt in p.by_type("aws:ec2/routeTable:RouteTable") if "-private-" in rt.name]
    assert all(bool(rt.inputs.get("routes")) == (nat != "none") for rt in private_routes)


def _endpoint_args(source: str, isolation: bool | None = None, instance: str = "ml.g5.2xlarge", engine="vllm"):
    model = ModelSpec.model_validate({"name": "mistral", "id": "mistralai/Mistral-7B-Instruct-v0.3", "engine": engine,
                                      "revision": "c170c708c41dac9275d15a8fff4eca08d52bab71", "maxContext": 8192,
                                      "source": source})
    target = SageMakerTarget.model_validate({"kind": "sagemaker", "name": "chat", "model": "mistral",
                                             "instanceType": instance,
                                             **({"networkIsolation": isolation} if isolation is not None else {})})
    foundation = AwsFoundation(
        region="us-east-1", account_id="123456789012", vpc_id="vpc-0123456789abcdef0", vpc_cidr="10.0.0.0/16",
        subnet_ids=["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"], s3_prefix_list_id="pl-63a5400a",
        bucket_name="artifacts", bucket_arn="arn:aws:s3:::artifacts", kms_key_arn=KEY)
    # The values the kind's `declare` passes, from the target's config (its defaults here).
    s, d, a = target.scaling, target.deployment, target.alarms
    return SageMakerEndpointArgs(
        endpoint_name="t-chat", foundation=foundation, model=model, facts=model.resolved_facts(),
        instance=instances_in("us-east-1")[instance], image_uri=sagemaker_image(engine, "us-east-1"), hf_token=None,
        tags=TAGS, network_isolation=target.isolation(model),
        scaling=VariantScaling(min_replicas=s.min_replicas, max_replicas=s.max_replicas,
                               invocations_per_instance=s.target_invocations_per_instance,
                               scale_in_cooldown_seconds=s.scale_in_cooldown_seconds,
                               scale_out_cooldown_seconds=s.scale_out_cooldown_seconds),
        deployment=BlueGreenUpdate(traffic_routing=d.traffic_routing, step_percent=d.step_percent,
                                   wait_seconds=d.wait_seconds, termination_wait_seconds=d.termination_wait_seconds),
        alarms=AlarmThresholds(p99_latency_ms=a.p99_latency_ms, error_rate_5xx_per_minute=a.error_rate_5xx_per_minute,
                               gpu_memory_percent=a.gpu_memory_percent),
        capture_percent=target.data_capture.sampling_percent if target.data_capture.enabled else None,
    )


def test_weights_from_s3_run_isolated_with_no_internet_and_exact_prefix():
    p = run(lambda: SageMakerEndpoint("e", _endpoint_args("s3")))
    (model,) = p.by_type("aws:sagemaker/model:Model")
    assert model.inputs["enableNetworkIsolation"] is True
    container = model.inputs["primaryContainer"]
    assert container["environment"]["SM_VLLM_MODEL"] == "/opt/ml/model"
    source = container["modelDataSource"]["s3DataSources"][0]
    assert source["s3Uri"] == "s3://artifacts/models/mistralai/Mistral-7B-Instruct-v0.3/c170c708c41dac9275d15a8fff4eca08d52bab71/"
    (sg,) = p.by_type("aws:ec2/securityGroup:SecurityGroup")
    assert all("0.0.0.0/0" not in rule.get("cidrBlocks", []) for rule in sg.inputs["egress"])
    (policy,) = p.by_type("aws:iam/rolePolicy:RolePolicy")
    by_sid = {s["Sid"]: s for s in policy_doc(policy.inputs["policy"])["Statement"]}
    assert by_sid["ReadModelWeights"]["Resource"] == (
        "arn:aws:s3:::artifacts/models/mistralai/Mistral-7B-Instruct-v0.3/c170c708c41dac9275d15a8fff4eca08d52bab71/*")
    assert "ReadHfToken" not in by_sid
    (config,) = p.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    variant = config.inputs["productionVariants"][0]
    assert variant["modelDataDownloadTimeoutInSeconds"] == variant["containerStartupHealthCheckTimeoutInSeconds"] == 420
    assert variant["inferenceAmiVersion"] == "al2023-ami-sagemaker-inference-gpu-4-1"  # CUDA 13 image, driver 580


def test_kms_on_endpoint_config_only_where_the_host_has_no_instance_storage():
    p = run(lambda: SageMakerEndpoint("e", _endpoint_args("s3", instance="ml.p3.2xlarge")))
    (config,) = p.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert config.inputs["kmsKeyArn"] == KEY


@pytest.mark.parametrize("engine, model_key, context_key", [
    ("vllm", "SM_VLLM_MODEL", "SM_VLLM_MAX_MODEL_LEN"),
    ("tgi", "HF_MODEL_ID", "MAX_TOTAL_TOKENS"),
    ("lmi", "HF_MODEL_ID", "OPTION_MAX_MODEL_LEN"),
])
def test_each_engine_gets_its_own_variables(engine, model_key, context_key):
    env = container_environment(_endpoint_args("hub", engine=engine))
    assert env[model_key] == "mistralai/Mistral-7B-Instruct-v0.3"
    assert env[context_key] == "8192"
    if engine == "tgi":
        assert env["MAX_INPUT_TOKENS"] == "8191" and env["SM_NUM_GPUS"] == "1"
        assert env["HF_MODEL_REVISION"] == "c170c708c41dac9275d15a8fff4eca08d52bab71"


def test_component_args_are_frozen():
    args = _endpoint_args("hub")
    with pytest.raises(dataclasses.FrozenInstanceError):
        args.endpoint_name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        args.scaling.max_replicas = 9
    target = SageMakerTarget.model_validate({"kind": "sagemaker", "name": "chat", "model": "mistral",
                                             "instanceType": "ml.g5.2xlarge"})
    with pytest.raises(ValidationError, match="frozen"):
        copy.copy(target).name = "other"
