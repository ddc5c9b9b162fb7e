"""Every policy rule against a compliant resource (as a shipped stack declares it) and a violating one (the same
resource with the one setting the rule is about changed), plus the exemptions platforms force and both runners."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components.catalog.pricing import lookup
from components.cost import Resource, resources_from_preview
from components.policies import BY_ID, RULES, Plan, check
from selfhost.cost_report import price_preview

from .conftest import mutate_plan as mutate
from .test_azure_policies import CASES as AZURE_CASES


def resources(previews, stack: str) -> list[Resource]:
    return resources_from_preview(previews[stack].to_json())




def drop(items: list[Resource], token: str) -> list[Resource]:
    return [r for r in items if r.type != token]


def pod(inputs: dict[str, Any]) -> dict[str, Any]:
    return inputs["spec"]["template"]["spec"]


def serving(inputs: dict[str, Any]) -> dict[str, Any]:
    return pod(inputs)["containers"][0]


SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
TEMPLATE_AWS, TEMPLATE_GCP = "aws:ec2/launchTemplate:LaunchTemplate", "gcp:compute/instanceTemplate:InstanceTemplate"
TOKEN = "hf_" + "a1B2c3D4" * 5

# rule -> (stack, how to break it)
CASES: dict[str, tuple[str, Callable[[list[Resource]], list[Resource]]]] = {
    "environment-tags": ("aws-dev", lambda p: mutate(p, "aws:s3/bucket:Bucket", lambda i: i["tags"].pop("owner"))),
    "aws-s3-kms": (
        "aws-dev",
        lambda p: mutate(
            p,
            SSE,
            lambda i: i["rules"][0]["applyServerSideEncryptionByDefault"].update(sseAlgorithm="AES256"),
            name="artifacts-encryption",
        ),
    ),
    "aws-s3-public-access-block": (
        "aws-dev",
        lambda p: mutate(
            p, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", lambda i: i.update(blockPublicPolicy=False)
        ),
    ),
    "aws-s3-versioning": (
        "aws-dev",
        lambda p: mutate(
            p,
            "aws:s3/bucketVersioning:BucketVersioning",
            lambda i: i["versioningConfiguration"].update(status="Suspended"),
        ),
    ),
    "aws-s3-tls-only": (
        "aws-dev",
        lambda p: mutate(
            p,
            "aws:s3/bucketPolicy:BucketPolicy",
            lambda i: i.update(policy=json.dumps({"Version": "2012-10-17", "Statement": []})),
        ),
    ),
    "aws-s3-access-logging": ("aws-dev", lambda p: drop(p, "aws:s3/bucketLogging:BucketLogging")),
    "aws-s3-abort-incomplete-uploads": ("aws-dev", lambda p: mutate(
        p, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", lambda i: i.update(
            rules=[r for r in i["rules"] if "abortIncompleteMultipartUpload" not in r]), name="artifacts-lifecycle")),
    "aws-kms-rotation": (
        "aws-dev",
        lambda p: mutate(p, "aws:kms/key:Key", lambda i: i.update(enableKeyRotation=False)),
    ),
    "aws-log-group-kms": (
        "aws-dev",
        lambda p: mutate(p, "aws:cloudwatch/logGroup:LogGroup", lambda i: i.pop("kmsKeyId")),
    ),
    "aws-log-retention": (
        "aws-dev",
        lambda p: mutate(p, "aws:cloudwatch/logGroup:LogGroup", lambda i: i.pop("retentionInDays")),
    ),
    "aws-secret-kms": (
        "aws-prod",
        lambda p: mutate(p, "aws:secretsmanager/secret:Secret", lambda i: i.pop("kmsKeyId")),
    ),
    "aws-ecr-scan-on-push": (
        "aws-pool",
        lambda p: mutate(
            p, "aws:ecr/repository:Repository", lambda i: i["imageScanningConfiguration"].update(scanOnPush=False)
        ),
    ),
    "aws-ecr-immutable-tags": (
        "aws-pool",
        lambda p: mutate(p, "aws:ecr/repository:Repository", lambda i: i.update(imageTagMutability="MUTABLE")),
    ),
    "aws-ecr-kms": (
        "aws-pool",
        lambda p: mutate(
            p,
            "aws:ecr/repository:Repository",
            lambda i: i.update(encryptionConfigurations=[{"encryptionType": "AES256"}]),
        ),
    ),
    "aws-lb-https": (
        "aws-pool",
        lambda p: mutate(p, "aws:lb/listener:Listener", lambda i: i.update(protocol="HTTP", port=80)),
    ),
    "aws-lb-access-logs": (
        "aws-pool",
        lambda p: mutate(p, "aws:lb/loadBalancer:LoadBalancer", lambda i: i.pop("accessLogs")),
    ),
    "aws-imdsv2": (
        "aws-pool",
        lambda p: mutate(p, TEMPLATE_AWS, lambda i: i["metadataOptions"].update(httpTokens="optional")),
    ),
    "aws-no-public-ip": (
        "aws-pool",
        lambda p: mutate(p, TEMPLATE_AWS, lambda i: i["networkInterfaces"][0].update(associatePublicIpAddress="true")),
    ),
    "aws-ebs-encrypted": (
        "aws-pool",
        lambda p: mutate(p, TEMPLATE_AWS, lambda i: i["blockDeviceMappings"][0]["ebs"].update(encrypted="false")),
    ),
    "aws-no-open-ingress": (
        "aws-pool",
        lambda p: mutate(
            p,
            "aws:ec2/securityGroup:SecurityGroup",
            lambda i: i.update(
                ingress=[{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]
            ),
        ),
    ),
    "aws-vpc-flow-logs": ("aws-dev", lambda p: drop(p, "aws:ec2/flowLog:FlowLog")),
    "aws-default-security-group-closed": (
        "aws-dev",
        lambda p: mutate(
            p,
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
            lambda i: i.update(ingress=[{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}]),
        ),
    ),
    "aws-sagemaker-private": (
        "aws-dev",
        lambda p: mutate(p, "aws:sagemaker/model:Model", lambda i: i.pop("vpcConfig")),
    ),
    "aws-iam-no-wildcard-actions": (
        "aws-dev",
        lambda p: mutate(
            p,
            "aws:iam/rolePolicy:RolePolicy",
            lambda i: i.update(
                policy=json.dumps(
                    {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]}
                )
            ),
        ),
    ),
    "aws-iam-scoped-resources": (
        "aws-dev",
        lambda p: mutate(
            p,
            "aws:iam/rolePolicy:RolePolicy",
            lambda i: i.update(
                policy=json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
            ),
        ),
    ),
    "aws-lb-internal": (
        "aws-pool",
        lambda p: mutate(p, "aws:lb/loadBalancer:LoadBalancer", lambda i: i.update(internal=False)),
    ),
    "secrets-not-in-user-data": (
        "gcp-pool",
        lambda p: mutate(
            p,
            TEMPLATE_GCP,
            lambda i: i["metadata"].update(
                {"startup-script": i["metadata"]["startup-script"] + f"export HF_TOKEN={TOKEN}\n"}
            ),
        ),
    ),
    "gcp-no-basic-roles": (
        "gcp-prod",
        lambda p: mutate(p, "gcp:projects/iAMMember:IAMMember", lambda i: i.update(role="roles/editor")),
    ),
    "gcp-no-external-ip": (
        "gcp-pool",
        lambda p: mutate(p, TEMPLATE_GCP, lambda i: i["networkInterfaces"][0].update(accessConfigs=[{}])),
    ),
    "gcp-shielded-vm": (
        "gcp-pool",
        lambda p: mutate(p, TEMPLATE_GCP, lambda i: i["shieldedInstanceConfig"].update(enableVtpm=False)),
    ),
    "gcp-os-login": (
        "gcp-pool",
        lambda p: mutate(p, TEMPLATE_GCP, lambda i: i["metadata"].update({"enable-oslogin": "FALSE"})),
    ),
    "gcp-subnet-private-and-logged": (
        "gcp-prod",
        lambda p: mutate(p, "gcp:compute/subnetwork:Subnetwork", lambda i: i.pop("logConfig")),
    ),
    "gcp-lb-https": ("gcp-pool", lambda p: mutate(p, "gcp:compute/regionBackendService:RegionBackendService",
                                                  lambda i: i.update(protocol="HTTP"))),
    "gcp-lb-logging": ("gcp-pool", lambda p: mutate(p, "gcp:compute/regionBackendService:RegionBackendService",
                                                    lambda i: i["logConfig"].update(sampleRate=0.1))),
    "gcp-no-open-ingress": (
        "gcp-pool",
        lambda p: mutate(
            p, "gcp:compute/firewall:Firewall", lambda i: i.update(sourceRanges=["0.0.0.0/0"]), name="allow-lb"
        ),
    ),
    "secrets-not-in-container-env": ("aws-dev", lambda p: mutate(p, "aws:sagemaker/model:Model", lambda i: i[
        "primaryContainer"]["environment"].update(HF_TOKEN="[secret]"))),
    "gcp-bigquery-cmek": ("gcp-prod", lambda p: mutate(p, "gcp:bigquery/dataset:Dataset",
                                                       lambda i: i.pop("defaultEncryptionConfiguration"))),
    "gcp-secret-cmek": ("gcp-prod", lambda p: mutate(p, "gcp:secretmanager/secret:Secret", lambda i: i["replication"][
        "userManaged"]["replicas"][0].pop("customerManagedEncryption"))),
    "gcp-artifact-registry-cmek": ("gcp-pool", lambda p: mutate(p, "gcp:artifactregistry/repository:Repository",
                                                                lambda i: i.pop("kmsKeyName"))),
    "gcp-kms-rotation": ("gcp-prod", lambda p: mutate(p, "gcp:kms/cryptoKey:CryptoKey",
                                                      lambda i: i.update(rotationPeriod="31536000s"))),
    "k8s-non-root": ("edge", lambda p: mutate(p, DEPLOYMENT, lambda i: pod(i)["securityContext"].update(runAsUser=0))),
    "k8s-read-only-root": (
        "edge",
        lambda p: mutate(p, DEPLOYMENT, lambda i: serving(i)["securityContext"].update(readOnlyRootFilesystem=False)),
    ),
    "k8s-no-privilege-escalation": (
        "edge",
        lambda p: mutate(p, DEPLOYMENT, lambda i: serving(i)["securityContext"].pop("allowPrivilegeEscalation")),
    ),
    "k8s-drop-capabilities": (
        "edge",
        lambda p: mutate(
            p, DEPLOYMENT, lambda i: serving(i)["securityContext"]["capabilities"].update(add=["NET_ADMIN"])
        ),
    ),
    "k8s-seccomp": ("edge", lambda p: mutate(p, DEPLOYMENT, lambda i: pod(i)["securityContext"].pop("seccompProfile"))),
    "k8s-requests-and-limits": (
        "edge",
        lambda p: mutate(p, DEPLOYMENT, lambda i: serving(i)["resources"]["limits"].pop("memory")),
    ),
    "k8s-probes": ("onprem", lambda p: mutate(p, DEPLOYMENT, lambda i: serving(i).pop("livenessProbe"))),
    "k8s-no-default-namespace": (
        "edge",
        lambda p: mutate(p, "kubernetes:core/v1:Service", lambda i: i["metadata"].update(namespace="default")),
    ),
    "k8s-service-account": (
        "edge",
        lambda p: mutate(p, DEPLOYMENT, lambda i: pod(i).update(automountServiceAccountToken=True)),
    ),
    "k8s-secrets-as-files": (
        "onprem",
        lambda p: mutate(
            p,
            DEPLOYMENT,
            lambda i: serving(i)["env"].append(
                {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "chat-secrets", "key": "hf_token"}}}
            ),
        ),
    ),
    "k8s-network-policy": ("edge", lambda p: [r for r in p if not r.name.endswith("default-deny")]),
    "hf-endpoint-not-public": ("hf-dev", lambda p: mutate(p, "pulumi-python:dynamic/hf:InferenceEndpoint",
                                                          lambda i: i.update(type="public"))),
}


def findings(rule_id: str, items: list[Resource]) -> list[str]:
    return [f.message for f in BY_ID[rule_id].run(Plan(items)) if f.exempt is None]


def test_there_are_at_least_25_rules_each_described_with_a_fix():
    assert len(RULES) >= 25
    for r in RULES:
        assert r.description and r.fix and r.severity in ("critical", "high", "medium", "low")
        assert all(c.startswith(("CKV_", "CKV2_")) for c in r.checkov)
    assert sum(bool(r.checkov) for r in RULES) >= 25


def test_every_rule_is_tested_here():
    special = {"monthly-budget", "aws-sagemaker-kms", "aws-sagemaker-network-isolation", "k8s-image-digest",
               "k8s-image-digest-production", "aws-log-retention-production", "secrets-not-in-outputs",
               "allowed-gpu-types",
               # Production only, or exempt by design: tests/test_aws_pool.py tests them.
               "aws-lb-deletion-protection", "aws-secret-rotation",
               # The router on ECS: no shipped stack has one yet; tests/test_aws_router.py breaks each against the
               # aws-prod stack with `router: {platform: aws}`.
               "aws-ecs-read-only-root", "aws-ecs-non-root", "aws-ecs-no-privilege", "aws-ecs-secrets-by-reference",
               "aws-ecs-separate-roles", "aws-ecs-no-public-ip", "aws-ecs-fargate-latest",
               "aws-ecs-cluster-observability",
               # The router on Cloud Run: no shipped stack has one yet; tests/test_gcp_router.py breaks each against a
               # gcp-prod plan with the router.
               "gcp-run-internal-ingress", "gcp-run-dedicated-identity", "gcp-run-vpc-egress",
               # Azure's: tests/test_azure_policies.py breaks each against a compliant plan (its own completeness test).
               *AZURE_CASES}
    assert set(BY_ID) == set(CASES) | special


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_a_compliant_resource_passes_and_the_violating_one_fails(previews, rule_id):
    stack, breaking = CASES[rule_id]
    plan = resources(previews, stack)
    assert findings(rule_id, plan) == []
    assert findings(rule_id, breaking(plan)), f"{rule_id} did not catch the change"


def test_the_budget_rule_reads_the_cost_engine(previews):
    graph = previews["aws-prod"].to_json()
    est = price_preview(graph, lookup)
    assert BY_ID["monthly-budget"].run(Plan(resources_from_preview(graph), est)) == []
    est.budget_monthly_usd = 500
    (finding,) = BY_ID["monthly-budget"].run(Plan(resources_from_preview(graph), est))
    assert "over the budget $500.00" in finding.message


def test_sagemaker_kms_knows_the_nvme_exception(previews):
    plan = resources(previews, "aws-dev")
    (exempt,) = BY_ID["aws-sagemaker-kms"].run(Plan(plan))
    assert exempt.exempt and "local NVMe" in exempt.exempt  # ml.g5: reported as exempt, not skipped
    config = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
    no_nvme = mutate(plan, config, lambda i: i["productionVariants"][0].update(instanceType="ml.p3.2xlarge"))
    assert findings("aws-sagemaker-kms", no_nvme)
    keyed = mutate(no_nvme, config, lambda i: i.update(kmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/k"))
    assert BY_ID["aws-sagemaker-kms"].run(Plan(keyed)) == []


def test_network_isolation_applies_to_weights_from_s3(previews):
    plan = resources(previews, "aws-dev")
    model = "aws:sagemaker/model:Model"
    # From the Hub: it needs the network, reported as an exemption that says how to isolate it.
    assert findings("aws-sagemaker-network-isolation", plan) == []
    (exempt,) = BY_ID["aws-sagemaker-network-isolation"].run(Plan(plan))
    assert exempt.exempt and "selfhost stage" in exempt.exempt
    from_s3 = mutate(
        plan,
        model,
        lambda i: (
            i["primaryContainer"].update(modelDataUrl="s3://b/models/m/"),
            i.update(enableNetworkIsolation=False),
        ),
    )
    assert findings("aws-sagemaker-network-isolation", from_s3)
    isolated = mutate(from_s3, model, lambda i: i.update(enableNetworkIsolation=True))
    assert BY_ID["aws-sagemaker-network-isolation"].run(Plan(isolated)) == []


def test_image_digest_is_advisory_and_a_digest_passes(previews):
    plan = resources(previews, "edge")
    assert findings("k8s-image-digest", plan) and not BY_ID["k8s-image-digest"].mandatory
    digest = "@sha256:" + "0" * 64

    def pin(i: dict[str, Any]) -> None:
        for c in [*pod(i)["initContainers"], *pod(i)["containers"]]:
            c["image"] = c["image"].split(":src-")[0] + digest

    assert findings("k8s-image-digest", mutate(plan, DEPLOYMENT, pin)) == []


def test_the_proxy_only_subnet_is_exempt_and_says_why(previews):
    (exempt,) = [
        f for f in BY_ID["gcp-subnet-private-and-logged"].run(Plan(resources(previews, "gcp-pool"))) if f.exempt
    ]
    assert "proxy-only" in exempt.exempt


def test_boot_scripts_that_fetch_the_token_pass(previews):
    # The pools' scripts name the token's file (HF_TOKEN_PATH=/run/...) and fetch it at boot: no secret in them.
    for stack in ("aws-pool", "gcp-pool"):
        assert findings("secrets-not-in-user-data", resources(previews, stack)) == []


def test_every_shipped_stack_passes_every_mandatory_rule(previews):
    for stack, p in previews.items():
        graph = p.to_json()
        report = check(resources_from_preview(graph), price_preview(graph, lookup))
        assert report.violations == [], stack


def test_the_readme_lists_every_rule():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert [r.id for r in RULES if f"`{r.id}`" not in readme] == []


def test_production_keeps_logs_a_year(previews):
    p = previews["aws-prod"]
    assert p.outputs["tier"] == "production"
    plan = resources(previews, "aws-prod")
    rule = BY_ID["aws-log-retention-production"]
    assert rule.run(Plan(plan, outputs=p.outputs)) == []
    short = mutate(plan, "aws:cloudwatch/logGroup:LogGroup", lambda i: i.update(retentionInDays=90))
    (finding,) = rule.run(Plan(short, outputs=p.outputs))
    assert "90 days in a production environment" in finding.message
    # A dev stack may keep less: an exemption the tier states, not a violation.
    (exempt,) = rule.run(Plan(short, outputs={"tier": "development"}))
    assert exempt.exempt and "not a production environment" in exempt.exempt


def test_the_access_log_bucket_is_exempt_from_kms_and_says_why(previews):
    exempt = [f for f in BY_ID["aws-s3-kms"].run(Plan(resources(previews, "aws-prod"))) if f.exempt]
    assert len(exempt) == 1 and "SSE-S3" in exempt[0].exempt and "access-logs" in exempt[0].resource


def test_a_token_in_an_output_is_caught(previews):
    outputs = previews["onprem"].outputs
    rule = BY_ID["secrets-not-in-outputs"]
    assert rule.run(Plan([], outputs=outputs)) == []  # the generated API keys are exported as a secret
    leaked = {**outputs, "debug": {"token": "hf_" + "Zz9" * 12}}
    (finding,) = rule.run(Plan([], outputs=leaked))
    assert "debug.token" in finding.message


def test_aws_prod_serves_without_a_token_in_the_model(previews):
    # The gap the review found: the token in the SageMaker model's environment. aws-prod stages the weights now.
    p = previews["aws-prod"]
    (model,) = p.by_type("aws:sagemaker/model:Model")
    assert "HF_TOKEN" not in model.inputs["primaryContainer"]["environment"] and model.secret_paths == []
    assert model.inputs["enableNetworkIsolation"] is True
    (group,) = [g for g in p.by_type("aws:ec2/securityGroup:SecurityGroup") if "chat" in g.name]
    assert all("0.0.0.0/0" not in e.get("cidrBlocks", []) for e in group.inputs["egress"])
    (job,) = p.by_type("command:local:Command")
    assert job.secret_paths == ["environment.HF_TOKEN"] and "selfhost.cli stage" in job.inputs["create"]


def test_only_allowed_gpus_serve(previews):
    rule = BY_ID["allowed-gpu-types"]
    pool = previews["aws-pool"].outputs  # g6 (L4) and g5 (A10G) types, both allowed there
    assert pool["policyInputs"] == {"allowedGpus": ["A10G", "L4"]} and rule.run(Plan([], outputs=pool)) == []
    (finding,) = rule.run(Plan([], outputs={**pool, "policyInputs": {"allowedGpus": ["L4"]}}))
    assert "endpoint chat runs on A10G" in finding.message  # the spot types' GPU counts too, not only the first
    vertex = previews["gcp-prod"].outputs  # Vertex's NVIDIA_L4 is the catalog's L4
    assert rule.run(Plan([], outputs=vertex)) == []
    assert rule.run(Plan([], outputs={**vertex, "policyInputs": {"allowedGpus": ["H100"]}}))
    assert rule.run(Plan([], outputs=previews["aws-dev"].outputs)) == []  # no allowedGpus: any
