"""`selfhost preview`, run as a user runs it, over every stack in stacks/."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

SELFHOST = str(Path(sys.executable).with_name("selfhost"))


def selfhost(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SELFHOST, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def all_json() -> dict:
    run = selfhost("preview", "--all", "--json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_preview_all_covers_every_stack_file(all_json, project):
    assert [s["stack"] for s in all_json["stacks"]] == project.stacks()
    for stack in all_json["stacks"]:
        assert stack["schemaVersion"] == 1 and stack["project"] == "selfhost-llm"
        assert stack["unmockedTypes"] == []


def counts(stack: dict) -> dict[str, int]:
    return dict(collections.Counter(r["type"] for r in stack["resources"]))


def router_counts(stack: dict, component_type: str) -> dict[str, int]:
    """`counts` of the router's resources alone: its component and everything under it."""
    urns, size = {r["urn"] for r in stack["resources"] if r["type"] == component_type}, -1
    while size != len(urns):
        size = len(urns)
        urns |= {r["urn"] for r in stack["resources"] if r["parent"] in urns}
    return dict(collections.Counter(r["type"] for r in stack["resources"] if r["urn"] in urns))


def test_aws_dev_plan(all_json):
    dev = next(s for s in all_json["stacks"] if s["stack"] == "aws-dev")
    assert counts(dev) == {
        "selfhost:aws:EncryptionKey": 1, "aws:kms/key:Key": 1, "aws:kms/alias:Alias": 1,
        "selfhost:aws:Network": 1, "aws:ec2/vpc:Vpc": 1, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": 1,
        "aws:ec2/subnet:Subnet": 3, "aws:ec2/routeTable:RouteTable": 3,
        "aws:ec2/routeTableAssociation:RouteTableAssociation": 3, "aws:ec2/internetGateway:InternetGateway": 1,
        "aws:ec2/eip:Eip": 1, "aws:ec2/natGateway:NatGateway": 1, "aws:ec2/vpcEndpoint:VpcEndpoint": 7,
        "aws:ec2/securityGroup:SecurityGroup": 2, "aws:cloudwatch/logGroup:LogGroup": 2, "aws:iam/role:Role": 2,
        "aws:iam/rolePolicy:RolePolicy": 2, "aws:ec2/flowLog:FlowLog": 1,
        # The artifacts bucket and its access-log bucket, each with the same guards.
        "selfhost:aws:ArtifactStore": 1, "selfhost:aws:AccessLogBucket": 1, "aws:s3/bucket:Bucket": 2,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 2,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 2, "aws:s3/bucketVersioning:BucketVersioning": 2,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 2,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 2, "aws:s3/bucketPolicy:BucketPolicy": 2,
        "aws:s3/bucketLogging:BucketLogging": 1,
        "selfhost:aws:SageMakerEndpoint": 1, "selfhost:aws:SageMakerExecutionRole": 1,
        "aws:sagemaker/model:Model": 1, "aws:sagemaker/endpointConfiguration:EndpointConfiguration": 1,
        "aws:sagemaker/endpoint:Endpoint": 1, "aws:cloudwatch/metricAlarm:MetricAlarm": 3,
        "aws:cloudwatch/dashboard:Dashboard": 1,
    }
    assert len(dev["resources"]) == 60
    out = dev["outputs"]
    chat = out["endpoints"]["chat"]
    assert (chat["kind"], chat["platform"], chat["region"], chat["auth"]) == ("sagemaker", "aws", "us-east-1",
                                                                           "aws-sigv4")
    assert chat["openaiBaseUrl"] is None and chat["replicas"] == {"min": 1, "max": 1}
    assert chat["endpointName"] == "aws-dev-chat"
    assert chat["endpointArn"] == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/aws-dev-chat"
    assert chat["invokeUrl"] == "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/aws-dev-chat/invocations"
    assert chat["roleArn"].startswith("arn:aws:iam::123456789012:role/aws-dev-chat-execution-role-")
    assert chat["image"].startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-vllm:0.29.0")
    assert chat["host"] == {"instance": "ml.g5.2xlarge", "accelerator": "A10G", "acceleratorCount": 1}
    assert out["artifactBucket"].startswith("aws-dev-artifacts-bucket-")
    assert out["vpcId"].startswith("vpc-") and len(out["privateSubnetIds"]) == 2
    assert "hfTokenSecretArn" not in out


def test_aws_prod_plan(all_json):
    prod = next(s for s in all_json["stacks"] if s["stack"] == "aws-prod")
    c = counts(prod)
    assert c["aws:ec2/natGateway:NatGateway"] == 3 and c["aws:ec2/subnet:Subnet"] == 6
    # The endpoint's scaling and the token's secret; the router's scaling and its four secrets (master key, two
    # callers' keys, its tasks' TLS key).
    assert c["aws:appautoscaling/target:Target"] == 2 and c["aws:appautoscaling/policy:Policy"] == 2
    assert c["aws:secretsmanager/secret:Secret"] == 5 and c["aws:secretsmanager/secretVersion:SecretVersion"] == 5
    assert len(prod["resources"]) == 120
    # The router (ECS Fargate behind an internal HTTPS load balancer, with its own CA): 42 of them.
    assert router_counts(prod, "selfhost:aws:Router") == {
        "selfhost:aws:Router": 1, "aws:ecs/cluster:Cluster": 1, "aws:ecs/taskDefinition:TaskDefinition": 1,
        "aws:ecs/service:Service": 1, "aws:appautoscaling/target:Target": 1, "aws:appautoscaling/policy:Policy": 1,
        "aws:lb/loadBalancer:LoadBalancer": 1, "aws:lb/listener:Listener": 1, "aws:lb/targetGroup:TargetGroup": 1,
        "aws:acm/certificate:Certificate": 1, "aws:ec2/securityGroup:SecurityGroup": 2,
        "aws:iam/role:Role": 2, "aws:iam/rolePolicy:RolePolicy": 2, "aws:cloudwatch/logGroup:LogGroup": 1,
        "aws:cloudwatch/metricAlarm:MetricAlarm": 4, "aws:cloudwatch/dashboard:Dashboard": 1,
        "aws:secretsmanager/secret:Secret": 4,
        "aws:secretsmanager/secretVersion:SecretVersion": 4, "random:index/randomPassword:RandomPassword": 3,
        "selfhost:tls:PrivateCa": 1, "tls:index/privateKey:PrivateKey": 3, "tls:index/selfSignedCert:SelfSignedCert": 1,
        "tls:index/certRequest:CertRequest": 2, "tls:index/locallySignedCert:LocallySignedCert": 2,
    }
    model = next(r for r in prod["resources"] if r["type"] == "aws:sagemaker/model:Model")
    # Weights staged in the bucket: the DLC loads the folder SageMaker downloads them to; no token in the model.
    assert model["inputs"]["primaryContainer"]["environment"]["SM_VLLM_MODEL"] == "/opt/ml/model"
    assert model["inputs"]["primaryContainer"]["modelDataSource"]["s3DataSources"][0]["s3Uri"].endswith(
        "/models/mistralai/Mistral-7B-Instruct-v0.3/c170c708c41dac9275d15a8fff4eca08d52bab71/")
    assert model["secretInputs"] == [] and model["inputs"]["enableNetworkIsolation"] is True
    out = prod["outputs"]
    assert out["hfTokenSecretArn"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:aws-prod-hf-token-")
    assert out["endpoints"]["chat"]["host"]["instance"] == "ml.g5.2xlarge"
    assert out["endpoints"]["chat"]["replicas"] == {"min": 1, "max": 4}


def test_gcp_prod_plan(all_json):
    gcp = next(s for s in all_json["stacks"] if s["stack"] == "gcp-prod")
    c = counts(gcp)
    # 12 APIs: the router's Cloud Run (run.googleapis.com) among them.
    assert c["gcp:projects/service:Service"] == 12 and c["selfhost:gcp:VertexEndpoint"] == 1
    assert any(r["inputs"].get("service") == "run.googleapis.com" for r in gcp["resources"])
    assert c["gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"] == 1
    # The endpoint's two alerts and dashboard, and the router's.
    assert c["gcp:monitoring/alertPolicy:AlertPolicy"] == 4 and c["gcp:monitoring/dashboard:Dashboard"] == 2
    assert c["gcp:bigquery/dataset:Dataset"] == 1 and c["command:local:Command"] == 1
    assert len(gcp["resources"]) == 66
    # The router (Cloud Run, pulling LiteLLM's image through a remote repository): 23 of them.
    assert router_counts(gcp, "selfhost:gcp:Router") == {
        "selfhost:gcp:Router": 1, "gcp:cloudrunv2/service:Service": 1, "gcp:artifactregistry/repository:Repository": 1,
        "gcp:serviceaccount/account:Account": 1, "gcp:projects/iAMMember:IAMMember": 2,
        "gcp:projects/iAMCustomRole:IAMCustomRole": 1, "gcp:vertex/aiEndpointIamMember:AiEndpointIamMember": 1,
        "gcp:secretmanager/secret:Secret": 3, "gcp:secretmanager/secretVersion:SecretVersion": 3,
        "gcp:secretmanager/secretIamBinding:SecretIamBinding": 3, "random:index/randomPassword:RandomPassword": 3,
        "gcp:monitoring/alertPolicy:AlertPolicy": 2, "gcp:monitoring/dashboard:Dashboard": 1,
    }
    chat = gcp["outputs"]["endpoints"]["chat"]
    assert (chat["kind"], chat["platform"], chat["auth"]) == ("vertex", "gcp", "gcp-oauth")
    assert chat["host"] == {"instance": "g2-standard-12", "accelerator": "NVIDIA_L4", "acceleratorCount": 1}
    assert chat["endpointId"].isdigit() and len(chat["endpointId"]) == 19
    assert chat["openaiBaseUrl"].startswith(f"https://{chat['endpointId']}.us-central1-")
    assert gcp["outputs"]["servingServiceAccount"].endswith("@acme-llm-prod.iam.gserviceaccount.com")


def test_resources_name_their_parent_and_dependencies(all_json):
    for stack in all_json["stacks"]:
        urns = {r["urn"] for r in stack["resources"]}
        stack_urn = f"urn:pulumi:{stack['stack']}::selfhost-llm::pulumi:pulumi:Stack::selfhost-llm-{stack['stack']}"
        for r in stack["resources"]:
            assert r["parent"] in urns | {stack_urn}
            assert set(r["dependencies"]) <= urns


def test_preview_is_deterministic(all_json):
    again = json.loads(selfhost("preview", "--all", "--json").stdout)
    assert again == all_json


def test_text_preview_shows_tree_and_outputs():
    run = selfhost("preview", "aws-dev")
    assert run.returncode == 0, run.stderr
    assert "Stack aws-dev (selfhost-llm): 54 resources in 6 components" in run.stdout
    assert "aws-dev-chat-endpoint aws:sagemaker/endpoint:Endpoint  name=aws-dev-chat" in run.stdout
    assert "invokeUrl" in run.stdout and "Traceback" not in run.stderr


def test_every_kind_writes_the_same_endpoint_keys(all_json):
    keys = {frozenset(k for k in endpoint if k not in ("endpointName", "endpointArn", "roleArn", "endpointId",
                                                       "resourceName", "serviceAccount", "privateIp",
                                                       "requestLogDataset", "poolName", "loadBalancerDns",
                                                       "instanceTypes", "spot", "namespace", "service", "inClusterUrl",
                                                       "apiKeys", "endpointType", "scaleToZeroAfterMinutes",
                                                       "routerBaseUrl", "caCertificate", "adapters", "deployments",
                                                       "workspace", "publicAccess"))
            for stack in all_json["stacks"] for endpoint in stack["outputs"]["endpoints"].values()}
    assert keys == {frozenset({"kind", "platform", "region", "model", "invokeUrl", "openaiBaseUrl", "auth", "host",
                               "replicas", "image", "startupTimeoutSeconds", "weights"})}


def test_secure_config_shows_only_a_placeholder():
    run = selfhost("preview", "aws-prod")
    assert run.returncode == 0, run.stderr
    assert "secret: secretString" in run.stdout
    assert "REPLACE-with" not in run.stdout  # the stack file's ciphertext is never shown either


@pytest.mark.parametrize("args, code, words", [
    (("preview", "nope"), 1, "no stack 'nope'"),
    (("preview",), 1, "name a stack or pass --all"),
])
def test_usage_errors(args, code, words):
    run = selfhost(*args)
    assert run.returncode == code and words in run.stderr and "Traceback" not in run.stderr


def test_stack_files_read_as_the_pure_python_parser_reads_them(project, monkeypatch):
    from selfhost import project as reader

    assert reader._LOADER is yaml.CSafeLoader  # PyYAML's wheels carry libyaml: the fast parser is the one in use
    fast = {stack: reader.stack_config(project, stack) for stack in project.stacks()}
    monkeypatch.setattr(reader, "_LOADER", yaml.SafeLoader)
    assert fast == {stack: reader.stack_config(project, stack) for stack in project.stacks()}


def test_a_malformed_stack_file_is_named_without_a_traceback(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.broken.yaml").write_text("config:\n  selfhost-llm:environment: [dev\n")
    run = subprocess.run([SELFHOST, "preview", "broken"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 1 and "Pulumi.broken.yaml: not valid YAML" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_a_malformed_project_file_is_named_without_a_traceback(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: [selfhost-llm\n")
    run = subprocess.run([SELFHOST, "preview", "--all"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 1 and "Pulumi.yaml: not valid YAML" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
