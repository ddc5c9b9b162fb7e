"""The LiteLLM router on AWS (issue 26): an ECS service on Fargate behind an internal load balancer, previewed in the
aws-prod stack (`router: {platform: aws}` in front of its SageMaker target) and, for what that stack does not
exercise (an aws-pool route, a given certificate, allowed ranges, a development tier), as a component on its own.
Checked against what a security reviewer asks of it, its cost and quota rows, its policy rules and the shell prelude
that hands the proxy its TLS files."""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.aws.router import (
    TLS_KEY_VAR,
    TLS_PRELUDE,
    Router,
    RouterArgs,
    fargate_size_problem,
    idle_timeout_seconds,
    sigv4_endpoint_arns,
    writable_mounts,
)
from components.catalog.pricing import lookup
from components.cost import estimate as price
from components.cost import resources_from_preview
from components.cost_rules import HOURS_PER_MONTH
from components.policies import BY_ID, Plan
from components.quotas import plan as quota_plan
from components.schema import Usage
from components.targets.base import Endpoint, HostShape, RouterRuntime
from components.targets.registry import KINDS, PLATFORMS, quota_rules
from selfhost.preview import run_program
from selfhost.project import stack_config

from .conftest import policy_doc

TASK = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
DIGEST = "ghcr.io/berriai/litellm-non_root:v1.99.4@sha256:" + "0" * 64
NEW_RULES = ("aws-ecs-read-only-root", "aws-ecs-non-root", "aws-ecs-no-privilege", "aws-ecs-secrets-by-reference",
             "aws-ecs-separate-roles", "aws-ecs-no-public-ip", "aws-ecs-fargate-latest",
             "aws-ecs-cluster-observability", "secrets-not-in-container-env")


def only(p, token: str, name: str = ""):
    (r,) = [r for r in p.resources if r.type == token and name in r.name]
    return r


def containers(p) -> list[dict[str, Any]]:
    return json.loads(only(p, TASK).inputs["containerDefinitions"])


def proxy(p) -> dict[str, Any]:
    (c,) = [c for c in containers(p) if c["name"] == "litellm"]
    return c


@pytest.fixture(scope="module")
def prod(project):
    """aws-prod with a router on AWS in front of its SageMaker target (pinned by digest: a production tier)."""
    import runpy

    config, secret_keys = stack_config(project, "aws-prod")
    config["selfhost-llm:router"] = json.dumps({"platform": "aws", "order": ["chat"], "image": DIGEST})
    return run_program(project.name, "aws-prod", config, secret_keys,
                       lambda: runpy.run_path(str(project.root / "__main__.py"), run_name="__main__"))


# A development-tier router on its own: a SageMaker route and an aws-pool route, a given certificate, allowed ranges.
SAGEMAKER_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dev-chat"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0b5d2c4e-1111-2222-3333-444455556666"
MASTER_KEY = "sk-" + "M" * 40
POOL_KEY = "pool-" + "K" * 40


def _endpoint(name: str, kind: str, auth: str, **details: Any) -> Endpoint:
    return Endpoint(name=name, kind=kind, platform="aws", region="us-east-1", model="org/model",
                    invoke_url=f"https://{name}.internal/v1/chat/completions",
                    openai_base_url=f"https://{name}.internal/v1", auth=auth, host=HostShape("x", None, 0),
                    min_replicas=1, max_replicas=1, image="image", startup_timeout_seconds=600, details=details)


def runtime(**changes: Any) -> RouterRuntime:
    base = RouterRuntime(
        name="dev-router", image=DIGEST, port=4000, command=("python3", "-c", "pass", "litellm", "--port", "4000"),
        files={"SELFHOST_ROUTER_CONFIG": '{"model_list": []}'}, files_dir="/tmp/selfhost-router",
        secrets={"SELFHOST_ROUTER_OTHER_KEY": MASTER_KEY, "SELFHOST_ROUTER_POOL_KEY": POOL_KEY},
        generated=("SELFHOST_ROUTER_MASTER_KEY", "SELFHOST_ROUTER_CALLER_WEB_KEY"),
        environment={"LITELLM_MODE": "PRODUCTION"}, liveness_path="/health/liveliness",
        readiness_path="/health/readiness", min_replicas=2, max_replicas=6, cpu=1.0, memory_mib=2048,
        timeout_seconds=600, routes=(_endpoint("chat", "sagemaker", "aws-sigv4", endpointArn=SAGEMAKER_ARN),
                                     _endpoint("pool", "aws-pool", "api-key")),
        allowed_cidrs=("192.168.0.0/16",), certificate=CERTIFICATE, tags={"environment": "dev", "owner": "ml"})
    return RouterRuntime(**{**base.__dict__, **changes})


def _component_program(rt: RouterRuntime, production: bool):
    def program() -> None:
        from components.aws.foundation import declare_foundation
        from components.schema import NetworkConfig

        foundation, _ = declare_foundation("dev", "us-east-1", NetworkConfig.model_validate({"nat": "single"}),
                                           dict(rt.tags), None, log_retention_days=30, own_image=False,
                                           lb_access_logs=True)
        router = Router(rt.name, RouterArgs(foundation=foundation, runtime=rt, production=production))
        pulumi.export("router", {"baseUrl": router.endpoint.base_url, **router.endpoint.details})
        pulumi.export("tier", "production" if production else "development")
    return program


@pytest.fixture(scope="module")
def dev(project):
    return run_program(project.name, "dev", {"aws:region": "us-east-1"}, [], _component_program(runtime(), False))


# ---------------------------------------------------------------------------------------------------------
# Identity


def test_the_task_role_invokes_exactly_the_routed_endpoints(prod, dev):
    endpoint = only(prod, "aws:sagemaker/endpoint:Endpoint").computed["arn"]
    for p, arns in ((prod, [endpoint]), (dev, [SAGEMAKER_ARN])):
        policy = only(p, "aws:iam/rolePolicy:RolePolicy", "router-task-policy").inputs["policy"]
        (statement,) = policy_doc(policy)["Statement"]
        assert statement["Effect"] == "Allow"
        assert sorted(statement["Action"]) == ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"]
        assert statement["Resource"] == arns  # the aws-pool route (api-key) adds nothing: it takes a key
    task = only(prod, TASK).inputs
    assert task["taskRoleArn"] != task["executionRoleArn"]


def test_the_execution_role_reads_exactly_its_secrets(prod):
    doc = policy_doc(only(prod, "aws:iam/rolePolicy:RolePolicy", "router-execution-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    secrets = sorted(r.computed["arn"] for r in prod.resources
                     if r.type == "aws:secretsmanager/secret:Secret" and r.name.startswith("aws-prod-router-"))
    assert sorted(by_sid["ReadRouterSecrets"]["Resource"]) == secrets and len(secrets) == 3
    assert by_sid["DecryptWithStackKey"]["Resource"] == only(prod, "aws:kms/key:Key").computed["arn"]
    assert by_sid["WriteOwnLogs"]["Resource"].endswith(":log-group:/selfhost/aws-prod-router:*")
    # A public registry's image: no ECR grant at all.
    assert set(by_sid) == {"ReadRouterSecrets", "DecryptWithStackKey", "WriteOwnLogs"}
    for statement in doc["Statement"]:
        assert "*" not in json.dumps(statement["Resource"]).replace(":*", "")


def test_an_ecr_image_is_pulled_from_its_repository_only(project):
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/litellm@sha256:" + "1" * 64
    p = run_program(project.name, "dev", {"aws:region": "us-east-1"}, [],
                    _component_program(runtime(image=image), False))
    doc = policy_doc(only(p, "aws:iam/rolePolicy:RolePolicy", "router-execution-policy").inputs["policy"])
    pull = next(s for s in doc["Statement"] if s["Sid"] == "PullImage")
    assert pull["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/mirror/litellm"


# ---------------------------------------------------------------------------------------------------------
# Secrets


def test_no_secret_value_is_in_the_task_definition_or_the_graph(prod, dev):
    for p in (prod, dev):
        task = only(p, TASK)
        assert task.secret_paths == []  # the task definition holds no secret: nothing to hide
        c = proxy(p)
        versions = {r.inputs["secretId"]: r.computed["versionId"]
                    for r in p.by_type("aws:secretsmanager/secretVersion:SecretVersion")}
        arns = {r.computed["arn"] for r in p.resources if r.type == "aws:secretsmanager/secret:Secret"}
        assert c["secrets"]
        for s in c["secrets"]:
            # The secret's ARN, pinned to the version this update wrote: a rotated value rolls the tasks.
            arn, json_key, stage, version = s["valueFrom"].rsplit(":", 3)
            assert arn in arns and (json_key, stage) == ("", "") and version == versions[arn]
        plain = {e["name"] for e in c["environment"]}
        assert not plain & {s["name"] for s in c["secrets"]}
        assert TLS_KEY_VAR in {s["name"] for s in c["secrets"]}
        for version in p.by_type("aws:secretsmanager/secretVersion:SecretVersion"):
            assert version.secret_paths == ["secretString"], version.name
    # The generated keys (prod) and the given ones (dev) appear nowhere in plain text.
    generated = [r.computed.get("result") for r in prod.by_type("random:index/randomPassword:RandomPassword")
                 if r.name.startswith("aws-prod-router-")]
    assert len(generated) == 2 and all(generated)
    for p, values in ((prod, generated), (dev, [MASTER_KEY, POOL_KEY])):
        text = json.dumps([{"inputs": r.inputs, "outputs": r.computed} for r in p.resources if
                           r.type != "random:index/randomPassword:RandomPassword"]) + json.dumps(p.outputs)
        for value in values:
            assert value not in text
    assert prod.outputs["router"]["callerKeys"] == {"default": "[secret]"}


def test_the_secrets_are_kept_with_the_stack_key(prod):
    key = only(prod, "aws:kms/key:Key").computed["arn"]
    secrets = [r for r in prod.by_type("aws:secretsmanager/secret:Secret") if r.name.startswith("aws-prod-router-")]
    assert secrets and all(s.inputs["kmsKeyId"] == key for s in secrets)
    logs = only(prod, "aws:cloudwatch/logGroup:LogGroup", "aws-prod-router-logs").inputs
    assert logs["kmsKeyId"] == key and logs["retentionInDays"] == 365  # the production tier's retention


# ---------------------------------------------------------------------------------------------------------
# The container


def test_the_containers_are_locked_down(prod):
    init, c = containers(prod)
    # The volumes' opener: root without any capability, read-only root, finished before the proxy starts.
    assert (init["name"], init["essential"], init["user"]) == ("volumes-init", False, "0:0")
    assert init["linuxParameters"]["capabilities"] == {"drop": ["ALL"]} and init["readonlyRootFilesystem"] is True
    assert init["command"] == ["chmod 1777 /tmp /app/.cache"] and "secrets" not in init and "environment" not in init
    assert c["dependsOn"] == [{"containerName": "volumes-init", "condition": "SUCCESS"}]
    assert c["readonlyRootFilesystem"] is True and c["privileged"] is False
    assert c["user"] == "65534:65534"
    assert c["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}
    assert c["image"] == DIGEST
    # Writable: /tmp (where the router's files go) and the image's cache, as task-scoped volumes.
    task = only(prod, TASK).inputs
    assert {m["containerPath"] for m in c["mountPoints"]} == {"/tmp", "/app/.cache"}
    assert {v["name"] for v in task["volumes"]} == {m["sourceVolume"] for m in c["mountPoints"]}
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
    assert (task["cpu"], task["memory"]) == ("1024", "2048")  # the router's default resources: 1 vCPU, 2Gi
    # The router's own command runs whole behind the prelude.
    assert c["entryPoint"][:3] == ["/bin/sh", "-c", TLS_PRELUDE]
    assert c["command"][0] == "python3" and "litellm" in c["command"]
    log = c["logConfiguration"]["options"]
    assert log["awslogs-group"] == "/selfhost/aws-prod-router" and log["mode"] == "non-blocking"


def test_the_prelude_writes_the_tls_files_and_hides_the_key(tmp_path: Path):
    """The prelude as the container's shell runs it: files owner-only, the key gone from the proxy's environment,
    the command run with its arguments as given."""
    out = tmp_path / "env.txt"
    env = {"PATH": os.environ["PATH"], "SELFHOST_TLS_CERT": "CERT TEXT", TLS_KEY_VAR: "KEY TEXT",
           "SSL_CERTFILE_PATH": str(tmp_path / "files" / "tls.crt"),
           "SSL_KEYFILE_PATH": str(tmp_path / "files" / "tls.key")}
    subprocess.run(["/bin/sh", "-c", TLS_PRELUDE, "selfhost-router", "/bin/sh", "-c",
                    f'env > {out}; echo "$@" >> {out}', "cmd", "--port", "4000"], env=env, check=True)
    assert (tmp_path / "files" / "tls.key").read_text() == "KEY TEXT\n"
    assert (tmp_path / "files" / "tls.crt").read_text() == "CERT TEXT\n"
    assert stat.S_IMODE((tmp_path / "files" / "tls.key").stat().st_mode) == 0o600
    seen = out.read_text()
    assert "KEY TEXT" not in seen and "SELFHOST_TLS" not in seen and "--port 4000" in seen
    assert f"SSL_KEYFILE_PATH={tmp_path / 'files' / 'tls.key'}" in seen


# ---------------------------------------------------------------------------------------------------------
# Network and load balancer


def test_the_service_runs_private_and_rolls_back(prod):
    service = only(prod, SERVICE).inputs
    net = service["networkConfiguration"]
    assert net["assignPublicIp"] is False
    subnets = [r.computed.get("id") or r.id for r in prod.by_type("aws:ec2/subnet:Subnet") if "private" in r.name]
    assert sorted(net["subnets"]) == sorted(prod.outputs["privateSubnetIds"]) and len(subnets) >= 3
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["launchType"] == "FARGATE" and service["platformVersion"] == "LATEST"
    (task_sg,) = [r for r in prod.by_type("aws:ec2/securityGroup:SecurityGroup") if r.name == "aws-prod-router-sg"]
    lb_sg = only(prod, "aws:ec2/securityGroup:SecurityGroup", "router-lb-sg")
    assert net["securityGroups"] == [task_sg.computed["id"] if "id" in task_sg.computed else task_sg.id]
    (ingress,) = task_sg.inputs["ingress"]
    assert (ingress["fromPort"], ingress["toPort"]) == (4000, 4000) and ingress["securityGroups"] == [lb_sg.id]
    assert [(e["fromPort"], e["toPort"]) for e in task_sg.inputs["egress"]] == [(443, 443)]


def test_the_load_balancer_takes_https_only(prod, dev):
    for p in (prod, dev):
        listener = only(p, "aws:lb/listener:Listener", "router").inputs
        assert (listener["protocol"], listener["port"]) == ("HTTPS", 443)
        assert listener["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
        group = only(p, "aws:lb/targetGroup:TargetGroup", "router").inputs
        assert group["protocol"] == "HTTPS" and group["targetType"] == "ip" and group["port"] == 4000
        assert group["healthCheck"]["protocol"] == "HTTPS" and group["healthCheck"]["path"] == "/health/readiness"
        assert group["deregistrationDelay"] == 600  # a stream as long as an attempt finishes before a task leaves
        alb = only(p, "aws:lb/loadBalancer:LoadBalancer", "router").inputs
        assert alb["internal"] is True and alb["dropInvalidHeaderFields"] is True
        assert alb["idleTimeout"] == 660  # above the router's 600 s timeout
    lb_sg = only(dev, "aws:ec2/securityGroup:SecurityGroup", "lb-sg").inputs
    vpc = only(dev, "aws:ec2/vpc:Vpc").inputs["cidrBlock"]
    assert [(i["fromPort"], i["cidrBlocks"]) for i in lb_sg["ingress"]] == [(443, [vpc]), (443, ["192.168.0.0/16"])]


def test_the_stack_ca_issues_the_certificate_and_callers_get_it(prod, dev):
    ca = only(prod, "tls:index/selfSignedCert:SelfSignedCert", "router").computed["certPem"]
    assert prod.outputs["router"]["caCertificate"] == ca
    acm = only(prod, "aws:acm/certificate:Certificate", "router")
    assert acm.inputs["certificateChain"] == ca and acm.secret_paths == ["privateKey"]
    assert only(prod, "aws:lb/listener:Listener", "router").inputs["certificateArn"] == acm.computed["arn"]
    # A given certificate: no imported one, no CA to trust, the listener on it.
    assert not [r for r in dev.by_type("aws:acm/certificate:Certificate")]
    assert "caCertificate" not in dev.outputs["router"]
    assert only(dev, "aws:lb/listener:Listener").inputs["certificateArn"] == CERTIFICATE
    # The tasks' own certificate (HTTPS to them) is issued either way.
    assert only(dev, "tls:index/locallySignedCert:LocallySignedCert", "tasks")


def test_access_logs_and_deletion_protection_by_tier(prod, dev):
    bucket = only(prod, "aws:s3/bucket:Bucket", "access-logs").computed["bucket"]
    alb = only(prod, "aws:lb/loadBalancer:LoadBalancer", "router").inputs
    assert alb["accessLogs"] == {"bucket": bucket, "prefix": "alb/aws-prod-router", "enabled": True}
    assert alb["enableDeletionProtection"] is True
    assert only(dev, "aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is False
    # The foundation's need: the access-log bucket admits ELB log delivery (aws-prod has no pool to ask for it).
    policy = policy_doc(only(prod, "aws:s3/bucketPolicy:BucketPolicy", "access-logs").inputs["policy"])
    delivery = [st for st in policy["Statement"] if st["Effect"] == "Allow" and st["Action"] == "s3:PutObject"
                and "/alb/" in st["Resource"]]
    assert delivery  # ELB's log delivery (in us-east-1, its regional account) may write under alb/


def test_autoscaling_tracks_cpu_within_the_bounds(prod, dev):
    target = only(dev, "aws:appautoscaling/target:Target").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (2, 6)
    assert target["resourceId"] == "service/dev-router/dev-router"
    config = only(dev, "aws:appautoscaling/policy:Policy").inputs["targetTrackingScalingPolicyConfiguration"]
    assert config["predefinedMetricSpecification"]["predefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    assert config["targetValue"] == 60.0
    assert only(dev, SERVICE).inputs["desiredCount"] == 2
    prod_target = only(prod, "aws:appautoscaling/target:Target", "router").inputs
    assert (prod_target["minCapacity"], prod_target["maxCapacity"]) == (2, 2)  # the router section's defaults


def test_two_vcpus_of_one_worker_scale_at_half_the_percentage(project):
    p = run_program(project.name, "dev", {"aws:region": "us-east-1"}, [],
                    _component_program(runtime(cpu=2.0, memory_mib=4096), False))
    config = only(p, "aws:appautoscaling/policy:Policy").inputs["targetTrackingScalingPolicyConfiguration"]
    assert config["targetValue"] == 30.0


def test_the_alarms_watch_the_router_target_group(prod):
    alarms = [r for r in prod.by_type("aws:cloudwatch/metricAlarm:MetricAlarm") if r.name.startswith("aws-prod-router")]
    assert sorted(a.inputs["name"] for a in alarms) == [f"aws-prod-router-{role}" for role in (
        "no-healthy-host", "p95-response-time", "target-5xx-rate", "unhealthy-hosts")]
    suffix = only(prod, "aws:lb/targetGroup:TargetGroup", "router").computed["arnSuffix"]
    unhealthy = next(a for a in alarms if a.inputs["name"].endswith("unhealthy-hosts")).inputs
    assert unhealthy["dimensions"]["TargetGroup"] == suffix


# ---------------------------------------------------------------------------------------------------------
# Cost, quota, policies


def test_the_cost_rule_prices_fargate_at_the_tasks_the_usage_needs(prod):
    resources = resources_from_preview(prod.to_json())
    quiet = price(resources, {"aws": "us-east-1"}, Usage.from_wire({}), lookup)
    items = [i for i in quiet.items if i.type == SERVICE]
    assert [i.unit for i in items] == ["vCPU-hour", "GB-hour"]
    vcpu, gb = items
    # 2 tasks of 1 vCPU and 2 GiB all month: 10,000 requests a day need fewer than the minimum.
    assert vcpu.quantity == pytest.approx((2 * HOURS_PER_MONTH,) * 3)
    assert gb.quantity == pytest.approx((2 * 2 * HOURS_PER_MONTH,) * 3)
    assert vcpu.unit_usd == 0.04048 and gb.unit_usd == 0.004445 and "infracost" in vcpu.source
    assert vcpu.monthly == pytest.approx((2 * HOURS_PER_MONTH * 0.04048,) * 3)
    # The load balancer, the alarms and the secrets are priced by their own rules; nothing of the router is unpriced.
    router = [i for i in quiet.items if i.resource.startswith("aws-prod-router")]
    assert {i.type for i in router} >= {"aws:lb/loadBalancer:LoadBalancer",
                                                  "aws:cloudwatch/metricAlarm:MetricAlarm",
                                                  "aws:secretsmanager/secret:Secret"}
    assert not [t for t in quiet.unpriced if t.startswith("aws:ecs")]


def test_a_busy_router_plans_more_tasks_up_to_its_maximum(dev):
    resources = resources_from_preview(dev.to_json())
    # 60 requests/s in the busy hours: 20 a one-worker task, 3 tasks; at 400/s the maximum (6) caps it.
    for rps, expected in ((60, 3), (400, 6)):
        usage = Usage.from_wire({"requestsPerDay": rps * 8 * 3600, "hoursPerDay": 8})
        est = price(resources, {"aws": "us-east-1"}, usage, lookup)
        (vcpu,) = [i for i in est.items if i.type == SERVICE and i.unit == "vCPU-hour"]
        busy = 8 / 24
        assert vcpu.quantity[0] == pytest.approx(2 * HOURS_PER_MONTH)
        assert vcpu.quantity[1] == pytest.approx((2 * (1 - busy) + expected * busy) * HOURS_PER_MONTH)
        assert vcpu.quantity[2] == pytest.approx(6 * HOURS_PER_MONTH)


def test_the_quota_rule_counts_vcpus_at_min_max_and_update(dev):
    needs = quota_plan(resources_from_preview(dev.to_json()), {"aws": "us-east-1"}, quota_rules()).needs
    (fargate,) = [n for n in needs if n.need == "fargate-vcpus:on-demand"]
    assert (fargate.at_min, fargate.at_max, fargate.at_update) == (2, 6, 12)  # a deployment doubles the tasks
    assert (fargate.quota_code, fargate.service, fargate.unit) == ("L-3032A538", "fargate", "vCPUs")
    assert "fargate" in PLATFORMS["aws"].quota_services


def test_the_new_rules_pass_and_each_catches_its_violation(prod):
    items = resources_from_preview(prod.to_json())
    plan = Plan(items, outputs=prod.outputs)
    for rule_id in NEW_RULES:
        assert [f.message for f in BY_ID[rule_id].run(plan) if f.exempt is None] == [], rule_id

    def broken(token: str, change) -> list:
        out = []
        for r in items:
            if r.type == token and r.name.startswith("aws-prod-router"):
                r = type(r)(r.type, r.name, r.component, copy.deepcopy(r.inputs))
                change(r.inputs)
            out.append(r)
        return out

    def container(change):
        def edit(inputs: dict[str, Any]) -> None:
            defs = json.loads(inputs["containerDefinitions"])
            change(defs[-1])  # the proxy
            inputs["containerDefinitions"] = json.dumps(defs)
        return edit

    cases = {
        "aws-ecs-read-only-root": (TASK, container(lambda c: c.update(readonlyRootFilesystem=False))),
        "aws-ecs-non-root": (TASK, container(lambda c: c.pop("user"))),
        "aws-ecs-no-privilege": (TASK, container(lambda c: c["linuxParameters"]["capabilities"].update(
            add=["SYS_ADMIN"]))),
        "aws-ecs-secrets-by-reference": (TASK, container(lambda c: c["environment"].append(
            {"name": "TLS", "value": "-----BEGIN EC PRIVATE KEY-----\nx\n-----END EC PRIVATE KEY-----"}))),
        "secrets-not-in-container-env": (TASK, container(lambda c: c["environment"].append(
            {"name": "MASTER", "value": MASTER_KEY}))),
        "aws-ecs-separate-roles": (TASK, lambda i: i.update(taskRoleArn=i["executionRoleArn"])),
        "aws-ecs-no-public-ip": (SERVICE, lambda i: i["networkConfiguration"].update(assignPublicIp=True)),
        "aws-ecs-fargate-latest": (SERVICE, lambda i: i.update(platformVersion="1.3.0")),
        "aws-ecs-cluster-observability": ("aws:ecs/cluster:Cluster", lambda i: i.update(settings=[])),
    }
    assert set(cases) == set(NEW_RULES)
    for rule_id, (token, change) in cases.items():
        found = [f for f in BY_ID[rule_id].run(Plan(broken(token, change), outputs=prod.outputs)) if not f.exempt]
        assert found, f"{rule_id} did not catch the change"
    # The init container's root is an exemption that says why, and only while it is a capability-less init
    # container the proxy waits for.
    (exempt,) = BY_ID["aws-ecs-non-root"].run(plan)
    assert exempt.exempt and "containers-roadmap#938" in exempt.exempt

    def init(change):
        def edit(inputs: dict[str, Any]) -> None:
            defs = json.loads(inputs["containerDefinitions"])
            change(defs[0])
            inputs["containerDefinitions"] = json.dumps(defs)
        return edit

    for change in (lambda c: c.update(essential=True), lambda c: c["linuxParameters"].update(capabilities={})):
        found = BY_ID["aws-ecs-non-root"].run(Plan(broken(TASK, init(change))))
        assert [f for f in found if not f.exempt], "a root container that is not a bare init container passed"
    # A secret reference that is a value, not an ARN.
    bad = broken(TASK, container(lambda c: c["secrets"][0].update(valueFrom="sk-" + "x" * 30)))
    assert BY_ID["aws-ecs-secrets-by-reference"].run(Plan(bad))


# ---------------------------------------------------------------------------------------------------------
# Checkov on the exported plan

CHECKOV = Path(__file__).resolve().parents[1] / ".tools" / "checkov" / "bin" / "checkov"
# What a team scanning the plan expects to pass on the router (the checks our rules and settings answer).
ROUTER_PASSES = {
    "aws_ecs_task_definition": {"CKV_AWS_336", "CKV_AWS_249", "CKV_AWS_334", "CKV_AWS_335"},
    "aws_ecs_service": {"CKV_AWS_333", "CKV_AWS_332"},
    "aws_ecs_cluster": {"CKV_AWS_65", "CKV_AWS_223", "CKV_AWS_224"},
    "aws_lb": {"CKV_AWS_91", "CKV_AWS_131", "CKV_AWS_150"},
    "aws_lb_listener": {"CKV_AWS_2", "CKV_AWS_103"},
    "aws_lb_target_group": {"CKV_AWS_378"},
    "aws_cloudwatch_log_group": {"CKV_AWS_158", "CKV_AWS_338", "CKV_AWS_66"},
    "aws_secretsmanager_secret": {"CKV_AWS_149"},
}


@pytest.mark.slow
def test_checkov_on_the_export_finds_only_what_is_explained(prod, tmp_path: Path) -> None:
    from components.policies import check, explain
    from selfhost.export import terraform_plan

    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make checkov` installs it"
    graph = prod.to_json()
    export = terraform_plan(graph)
    (tmp_path / "aws-prod-router.json").write_text(json.dumps(export.document))
    run = subprocess.run([str(CHECKOV), "--framework", "terraform_plan", "--skip-download", "-o", "json", "-f",
                          "aws-prod-router.json"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert run.returncode in (0, 1), run.stderr
    report = json.loads(run.stdout)
    assert report["summary"]["parsing_errors"] == 0
    name_of = {address: next(r["name"] for r in graph["resources"] if r["urn"] == urn)
               for urn, address in export.addresses.items()}
    router = {a for a, n in name_of.items() if n.startswith("aws-prod-router")}
    passed = {(c["check_id"], c["resource"]) for c in report["results"]["passed_checks"]}
    for tf_type, checks in ROUTER_PASSES.items():
        addresses = {a for a in router if a.split(".")[0] == tf_type}
        assert addresses, tf_type
        for address in addresses:
            assert {(c, address) for c in checks} <= passed, f"{address}: {sorted(checks)}"
    ours = check(resources_from_preview(graph), None, graph["outputs"])
    verdicts = {}
    for c in report["results"]["failed_checks"]:
        verdict, why = explain(c["check_id"], name_of[c["resource"]], ours)
        assert verdict in ("exempt", "advisory", "noted"), f"{c['check_id']} on {c['resource']}: {why}"
        verdicts[(c["check_id"], c["resource"])] = verdict
    # On the router, only the secrets' rotation (rotated by configuration; each task definition pins its versions).
    assert {check for check, address in verdicts if address in router} <= {"CKV2_AWS_57"}


# ---------------------------------------------------------------------------------------------------------
# Config checks


def _load(project, router: dict[str, Any], nat: str = "per-az"):
    from components.config import load_environment

    config, secret_keys = stack_config(project, "aws-prod")
    config["selfhost-llm:router"] = json.dumps(router)
    network = json.loads(config["selfhost-llm:network"])
    config["selfhost-llm:network"] = json.dumps({**network, "nat": nat})
    return load_environment("aws-prod", config, set(secret_keys))


def test_a_router_without_nat_needs_its_image_in_ecr(project):
    from components.schema import ConfigError

    with pytest.raises(ConfigError) as caught:
        _load(project, {"platform": "aws", "order": ["chat"], "image": DIGEST}, nat="none")
    assert any(p.path == "selfhost-llm:network.nat" and "public registry" in p.message for p in caught.value.problems)
    mirrored = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/litellm@sha256:" + "1" * 64
    env = _load(project, {"platform": "aws", "order": ["chat"], "image": mirrored}, nat="none")
    assert env.router_platform == "aws"


def test_a_given_certificate_is_an_acm_one_of_the_region(project):
    from components.schema import ConfigError

    wrong = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    with pytest.raises(ConfigError) as caught:
        _load(project, {"platform": "aws", "order": ["chat"], "image": DIGEST, "certificate": wrong})
    assert [p.path for p in caught.value.problems] == ["selfhost-llm:router.certificate"]
    right = "arn:aws:acm:us-east-1:123456789012:certificate/0b5d2c4e-1111"
    assert _load(project, {"platform": "aws", "order": ["chat"], "image": DIGEST, "certificate": right})


# ---------------------------------------------------------------------------------------------------------
# Pure parts


def test_fargate_sizes():
    assert fargate_size_problem(1, 2048) is None and fargate_size_problem(0.25, 512) is None
    assert fargate_size_problem(16, 122880) is None
    assert "512, 1024, 2048" in (fargate_size_problem(0.25, 1536) or "")
    assert "not a Fargate task size" in (fargate_size_problem(3, 6144) or "")
    assert "2048-8192" in (fargate_size_problem(1, 1024) or "")


def test_the_component_refuses_what_fargate_refuses(project):
    with pytest.raises(Exception, match="not a memory size Fargate accepts"):
        run_program(project.name, "dev", {"aws:region": "us-east-1"}, [],
                    _component_program(runtime(memory_mib=1000), False))


def test_idle_timeout_and_sigv4_records():
    assert idle_timeout_seconds(600) == 660 and idle_timeout_seconds(3600) == 3660
    with pytest.raises(ValueError, match="maximum idle timeout"):
        idle_timeout_seconds(3990)
    with pytest.raises(ValueError, match="no endpointArn"):
        sigv4_endpoint_arns([_endpoint("chat", "sagemaker", "aws-sigv4")])
    assert sigv4_endpoint_arns([_endpoint("pool", "aws-pool", "api-key")]) == []


def test_writable_mounts_nest_no_volume_in_another():
    assert writable_mounts("/tmp/selfhost-router") == [("tmp", "/tmp"), ("app-cache", "/app/.cache")]
    assert [p for _, p in writable_mounts("/srv/router/")] == ["/tmp", "/app/.cache", "/srv/router"]


def _target(kind: str, **fields: Any) -> Any:
    model = KINDS[kind].config
    return model.model_construct(kind=kind, **fields)


@pytest.mark.parametrize(("kind", "fields", "reachable"), [
    ("sagemaker", {}, True),
    ("aws-pool", {}, True),
    ("hf-endpoint", {"endpoint_type": "authenticated"}, True),
    ("hf-endpoint", {"endpoint_type": "private"}, False),
    ("vertex", {}, False),
    ("gcp-pool", {}, False),
    ("kubernetes", {}, False),
])
def test_what_a_router_on_aws_reaches(kind, fields, reachable):
    why = PLATFORMS["aws"].router_reaches(KINDS[kind], _target(kind, **fields))
    assert (why is None) == reachable, why
    if not reachable:
        assert why and re.search(r"network|cannot|token|credentials", why)
