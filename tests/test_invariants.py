"""Invariants every stack's plan must hold, checked on the resource graph the real program declares under mocks."""

from __future__ import annotations

import importlib
import inspect
import json
from functools import cache

import pulumi
import pytest

from components.catalog.iam import ACTIONS_WITHOUT_RESOURCE_LEVEL
from components.catalog.models import MODELS
from components.catalog.sagemaker_instances import instances_in
from components.schema import SECRET_PLACEHOLDER
from components.sizing import DOWNLOAD_BYTES_PER_S, LOAD_BYTES_PER_S, WARMUP_S, weights_bytes
from selfhost.mocks import SECRET_SIG, SPECIAL_SIG
from selfhost.preview import run_program

from .conftest import in_component, policy_doc, split_by_component


@cache
def resource_class(token: str):
    pkg, module, name = token.split(":")
    mod = importlib.import_module(f"pulumi_{pkg}.{module.split('/')[0]}" if module != "index" else f"pulumi_{pkg}")
    return getattr(mod, name)


def tag_field(token: str) -> str | None:
    """Where a resource type takes our environment tags: AWS `tags`, GCP `labels` (or `user_labels`). Other
    providers' `tags` and `labels` are something else (docker-build: image names and OCI labels)."""
    if not token.startswith(("aws:", "gcp:")):
        return None
    params = inspect.signature(resource_class(token)._internal_init).parameters
    candidates = ("tags",) if token.startswith("aws:") else ("labels", "user_labels")
    return next((_camel(c) for c in candidates if c in params), None)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def artifacts(p, token: str) -> list:
    """The artifacts bucket's resources of type `token` (not those of its access-log bucket)."""
    return [r for r in p.by_type(token) if "-artifacts-" in r.name and "-access-logs-" not in r.name]


def split(p, token: str) -> tuple[list, list]:
    """The resources of type `token`: those outside the router (the serving target, the stack's foundation),
    and the router's own."""
    return split_by_component(p, token, "selfhost:aws:Router")


def stacks(previews):
    return list(previews.values())


def aws_stacks(previews):
    return [p for p in previews.values() if "awsRegion" in p.outputs]


def gcp_stacks(previews):
    return [p for p in previews.values() if "gcpProject" in p.outputs]


def test_every_stack_previews_with_faithful_mocks(previews):
    assert set(previews) >= {"aws-dev", "aws-prod"}
    for p in previews.values():
        assert p.unmocked_types == [], p.stack


def test_every_taggable_resource_carries_the_environment_tags(previews):
    for p in stacks(previews):
        env = p.outputs["environment"]
        checked = 0
        for r in p.resources:
            key = tag_field(r.type) if r.custom else None
            if r.type.startswith("kubernetes:") and r.type != "kubernetes:helm.sh/v3:Release":
                key = "metadata.labels"  # Kubernetes objects carry them as labels
            if key is None:
                continue
            tags = (r.inputs.get("metadata") or {}).get("labels") if key == "metadata.labels" else r.inputs.get(key)
            tags = tags or {}
            if isinstance(tags, list):  # an Auto Scaling group's tags: [{key, value, propagateAtLaunch}]
                tags = {t["key"]: t["value"] for t in tags}
            for tag in ("environment", "owner", "managed-by", "project"):
                assert tag in tags, f"{p.stack}: {r.urn} lacks tag {tag} in {key}"
            assert tags["environment"] == env
            checked += 1
        # A stack of Hugging Face endpoints alone has nothing that takes tags (the endpoint API has none of ours).
        taggable = any(tag_field(r.type) or r.type.startswith("kubernetes:") for r in p.resources if r.custom)
        assert checked >= (30 if "awsRegion" in p.outputs else 3 if taggable else 0), p.stack


def test_every_resource_is_parented_under_a_selfhost_component(previews):
    for p in stacks(previews):
        components = {r.urn: r for r in p.resources if not r.custom}
        assert all(c.type.startswith("selfhost:") for c in components.values())
        for r in p.resources:
            if r.custom:
                assert r.parent in components, f"{r.urn} is not inside a component"
                assert r.name.startswith(components[r.parent].name), f"{r.name} not named after its component"


def test_endpoints_run_only_in_private_subnets(previews):
    for p in aws_stacks(previews):
        subnets = {r.id: r for r in p.by_type("aws:ec2/subnet:Subnet")}
        private = {i for i, r in subnets.items() if "-private-" in r.name}
        public_ids = set(subnets) - private
        assert private
        for model in p.by_type("aws:sagemaker/model:Model"):
            used = set(model.inputs["vpcConfig"]["subnets"])
            assert used == private, p.stack
            assert not used & public_ids
        for subnet in subnets.values():
            assert not subnet.inputs.get("mapPublicIpOnLaunch"), subnet.name
        for route_table in p.by_type("aws:ec2/routeTable:RouteTable"):
            if "-private-" in route_table.name:
                routes = route_table.inputs.get("routes", [])
                assert not any("gatewayId" in r for r in routes), "IGW route in private RT"


def test_no_security_group_takes_traffic_from_the_internet(previews):
    for p in aws_stacks(previews):
        for sg in p.by_type("aws:ec2/securityGroup:SecurityGroup"):
            for rule in sg.inputs.get("ingress", []):
                assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), sg.name
        (default,) = p.by_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
        assert not default.inputs.get("ingress") and not default.inputs.get("egress")


def test_private_network_reaches_aws_through_endpoints(previews):
    for p in aws_stacks(previews):
        region = p.outputs["awsRegion"]
        services = {r.inputs["serviceName"] for r in p.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
        for svc in ("s3", "ecr.api", "ecr.dkr", "logs", "sts", "secretsmanager"):
            assert f"com.amazonaws.{region}.{svc}" in services
        # The SageMaker runtime's endpoint exactly where a SageMaker target is (it costs per zone-hour).
        has_sagemaker = any(e["kind"] == "sagemaker" for e in p.outputs["endpoints"].values())
        assert (f"com.amazonaws.{region}.sagemaker.runtime" in services) == has_sagemaker, p.stack
        (flow,) = p.by_type("aws:ec2/flowLog:FlowLog")
        assert flow.inputs["trafficType"] == "ALL"


def test_encryption_with_the_environment_key_everywhere(previews):
    for p in aws_stacks(previews):
        (key,) = p.by_type("aws:kms/key:Key")
        arn = key.computed["arn"]
        assert key.inputs["enableKeyRotation"] is True and key.protect
        (sse,) = artifacts(p, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
        rule = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
        assert rule == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": arn}
        for group in p.by_type("aws:cloudwatch/logGroup:LogGroup"):
            assert group.inputs["kmsKeyId"] == arn, group.name
        for secret in p.by_type("aws:secretsmanager/secret:Secret"):
            assert secret.inputs["kmsKeyId"] == arn
        for config in p.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
            capture = config.inputs.get("dataCaptureConfig")
            assert capture is None or capture["kmsKeyId"] == arn
            instance = instances_in(p.outputs["awsRegion"])[config.inputs["productionVariants"][0]["instanceType"]]
            # SageMaker rejects a KmsKeyId for hosts with NVMe instance storage (hardware-encrypted).
            assert ("kmsKeyArn" in config.inputs) == (not instance.has_instance_storage)


def test_artifact_bucket_is_private_versioned_and_protected(previews):
    for p in aws_stacks(previews):
        (bucket,) = artifacts(p, "aws:s3/bucket:Bucket")
        assert bucket.protect
        (block,) = artifacts(p, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        assert all(block.inputs[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                             "restrictPublicBuckets"))
        (versioning,) = artifacts(p, "aws:s3/bucketVersioning:BucketVersioning")
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
        (policy,) = artifacts(p, "aws:s3/bucketPolicy:BucketPolicy")
        statement = policy_doc(policy.inputs["policy"])["Statement"][0]
        assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _statements(p):
    for rp in p.by_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in policy_doc(rp.inputs["policy"])["Statement"]:
            yield rp, statement


def test_no_wildcard_iam(previews):
    for p in aws_stacks(previews):
        count = 0
        for rp, st in _statements(p):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            assert st["Effect"] == "Allow"
            for action in actions:
                assert "*" not in action, f"{rp.name}: wildcard action {action}"
            if "*" in resources:
                assert set(actions) <= ACTIONS_WITHOUT_RESOURCE_LEVEL, f"{rp.name}: {actions} on *"
            count += 1
        assert count >= 6, p.stack  # the least any stack's roles hold (aws-pool: flow logs 1, instances 5)


def test_sagemaker_role_names_exact_resources(previews):
    p = previews["aws-prod"]
    (bucket,) = artifacts(p, "aws:s3/bucket:Bucket")
    (secret,), router_secrets = split(p, "aws:secretsmanager/secret:Secret")
    (key,) = p.by_type("aws:kms/key:Key")
    (endpoint,) = p.by_type("aws:sagemaker/endpoint:Endpoint")
    policies, router_policies = split(p, "aws:iam/rolePolicy:RolePolicy")
    (policy,) = [rp for rp in policies if "execution" in rp.name]
    by_sid = {s["Sid"]: s for s in policy_doc(policy.inputs["policy"])["Statement"]}
    # The weights are staged in the bucket: the role reads exactly that revision's prefix, and not the token
    # (only the staging job on the deploying machine uses it).
    assert "ReadHfToken" not in by_sid and secret.computed["arn"] not in json.dumps(by_sid)
    assert by_sid["ReadModelWeights"]["Resource"] == (
        f"{bucket.computed['arn']}/models/mistralai/Mistral-7B-Instruct-v0.3/c170c708c41dac9275d15a8fff4eca08d52bab71/*")
    assert by_sid["UseEnvironmentKey"]["Resource"] == key.computed["arn"]
    assert by_sid["PullServingImage"]["Resource"] == "arn:aws:ecr:us-east-1:763104351884:repository/huggingface-vllm"
    assert by_sid["WriteEndpointLogs"]["Resource"][0] == (
        f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/{endpoint.inputs['name']}")
    assert by_sid["WriteDataCapture"]["Resource"] == (
        f"{bucket.computed['arn']}/data-capture/{endpoint.inputs['name']}/*")

    # The router's roles name exact resources too: its execution role reads its own secrets (and not the token),
    # decrypts with the stack's key and writes its own log group; its task role invokes the endpoint it routes to.
    by_name = {rp.name: {s["Sid"]: s for s in policy_doc(rp.inputs["policy"])["Statement"]}
               for rp in router_policies}
    assert set(by_name) == {"aws-prod-router-execution-policy", "aws-prod-router-task-policy"}
    execution, task = by_name["aws-prod-router-execution-policy"], by_name["aws-prod-router-task-policy"]
    _, (log_group,) = split(p, "aws:cloudwatch/logGroup:LogGroup")
    assert set(execution) == {"ReadRouterSecrets", "DecryptWithStackKey", "WriteOwnLogs"}
    assert sorted(execution["ReadRouterSecrets"]["Resource"]) == sorted(s.computed["arn"] for s in router_secrets)
    assert len(router_secrets) == 4 and secret.computed["arn"] not in json.dumps(execution)
    assert execution["DecryptWithStackKey"]["Resource"] == key.computed["arn"]
    assert execution["WriteOwnLogs"]["Resource"] == f"{log_group.computed['arn']}:*"
    assert set(task) == {"InvokeRoutedEndpoints"}
    assert task["InvokeRoutedEndpoints"]["Resource"] == [
        f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{endpoint.inputs['name']}"]


def test_hf_token_is_only_ever_a_secret(previews):
    p = previews["aws-prod"]
    router = in_component(p, "selfhost:aws:Router")
    (version,), _ = split(p, "aws:secretsmanager/secretVersion:SecretVersion")
    assert version.secret_paths == ["secretString"] and version.inputs["secretString"] == SECRET_PLACEHOLDER
    # The staging job takes it as a secret environment variable; the serving model never sees it.
    (job,) = p.by_type("command:local:Command")
    assert job.secret_paths == ["environment.HF_TOKEN"] and job.inputs["environment"]["HF_TOKEN"] == SECRET_PLACEHOLDER
    (model,) = p.by_type("aws:sagemaker/model:Model")
    assert model.secret_paths == [] and "HF_TOKEN" not in model.inputs["primaryContainer"]["environment"]
    assert all(not r.secret_paths for r in p.resources if r not in (version, job) and r.urn not in router)
    # The router's secrets are its own (its generated keys, its TLS key), none from the token: nothing of the
    # router depends on the token's secret or the job that uses it.
    router_secrets = {(r.type.split(":")[-1], tuple(r.secret_paths)) for r in p.resources
                      if r.urn in router and r.secret_paths}
    assert router_secrets == {
        ("SecretVersion", ("secretString",)), ("Certificate", ("privateKey",)), ("CertRequest", ("privateKeyPem",)),
        ("LocallySignedCert", ("caPrivateKeyPem",)), ("SelfSignedCert", ("privateKeyPem",))}
    assert all(version.urn not in r.dependencies and job.urn not in r.dependencies
               and version.parent not in r.dependencies for r in p.resources if r.urn in router)
    assert sorted(p.secret_outputs) == ["router.adminKey", "router.callerKeys.batch", "router.callerKeys.support-bot"]


def test_a_real_token_value_reaches_the_secret_but_never_the_preview(project, capsys):
    """Run the real program with a known token: it must land in the secret version (so the deployment works),
    and appear nowhere in the captured graph, the outputs, or what the CLI would print."""
    import runpy

    from selfhost.cli import _print_preview
    from selfhost.project import stack_config

    canary = "hf_CANARY_7f3a9c0e2b"
    config, secret_keys = stack_config(project, "aws-prod")
    config["selfhost-llm:hfToken"] = canary

    def program():
        runpy.run_path(str(project.root / "__main__.py"), run_name="__main__")

    preview = run_program(project.name, "aws-prod", config, secret_keys, program)
    seen = pulumi.runtime.settings.SETTINGS.monitor.resources  # the mock engine's own state
    versions = [r for r in seen.values() if "secretsmanager/secretVersion" in r.urn]
    (stored,) = [r.state["secretString"] for r in versions if "selfhost:aws:HfTokenSecret$" in r.urn]
    assert stored == {SPECIAL_SIG: SECRET_SIG, "value": canary}  # delivered, and still wrapped as a secret
    # The router's secret versions (its own keys) are other secrets: the token is in none of them.
    others = [r for r in versions if "selfhost:aws:HfTokenSecret$" not in r.urn]
    assert len(others) == 4 and all(canary not in repr(r.state) for r in others)
    assert canary not in json.dumps(preview.to_json())
    _print_preview(preview)
    assert canary not in capsys.readouterr().out


def test_container_startup_timeout_covers_download_and_load(previews):
    for p in aws_stacks(previews):
        for config in p.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
            variant = config.inputs["productionVariants"][0]
            model = next(m for m in p.by_type("aws:sagemaker/model:Model")
                         if m.computed["name"] == variant["modelName"])
            # The model's Hugging Face id, from its identity tag (its environment names /opt/ml/model when the
            # weights come from the bucket).
            model_id = model.inputs["tags"]["selfhost-model"]
            weights = weights_bytes(MODELS[model_id], "none")
            # From the Hub the container downloads within the health-check budget; from the bucket SageMaker has
            # downloaded before the container starts (ModelDataDownloadTimeoutInSeconds), so loading remains.
            staged = bool(model.inputs["primaryContainer"].get("modelDataSource"))
            floor = (weights / LOAD_BYTES_PER_S if staged else weights / DOWNLOAD_BYTES_PER_S["hub"]) + WARMUP_S
            timeout = variant["containerStartupHealthCheckTimeoutInSeconds"]
            assert floor < timeout <= 3600, (p.stack, timeout, floor)
    prod = previews["aws-prod"].by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")[0]
    assert prod.inputs["productionVariants"][0]["containerStartupHealthCheckTimeoutInSeconds"] >= 400
    assert prod.inputs["productionVariants"][0]["modelDataDownloadTimeoutInSeconds"] >= 400


def test_blue_green_with_alarm_rollback_and_autoscaling(previews):
    p = previews["aws-prod"]
    (endpoint,) = p.by_type("aws:sagemaker/endpoint:Endpoint")
    deploy = endpoint.inputs["deploymentConfig"]
    routing = deploy["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
    assert routing["type"] == "CANARY" and routing["canarySize"] == {"type": "CAPACITY_PERCENT", "value": 25}
    alarms, router_alarms = split(p, "aws:cloudwatch/metricAlarm:MetricAlarm")
    alarm_names = {a.inputs["name"] for a in alarms}
    assert {a["alarmName"] for a in deploy["autoRollbackConfiguration"]["alarms"]} == alarm_names
    assert {a.inputs["metricName"] for a in alarms} == {
        "ModelLatency", "Invocation5XXErrors", "GPUMemoryUtilization"}
    # The router's alarms (on its load balancer) are its own, not the endpoint's rollback alarms.
    assert {a.inputs["name"] for a in router_alarms} == {
        "aws-prod-router-no-healthy-host", "aws-prod-router-p95-response-time", "aws-prod-router-target-5xx-rate",
        "aws-prod-router-unhealthy-hosts"}
    (target,), (router_target,) = split(p, "aws:appautoscaling/target:Target")
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (1, 4)
    assert target.inputs["resourceId"] == "endpoint/aws-prod-chat/variant/AllTraffic"
    (policy,), (router_policy,) = split(p, "aws:appautoscaling/policy:Policy")
    spec = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert spec["predefinedMetricSpecification"]["predefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    # The router's service scales on its tasks' CPU, between the stack's router replicas and maxReplicas.
    assert (router_target.inputs["minCapacity"], router_target.inputs["maxCapacity"]) == (2, 4)
    assert router_target.inputs["resourceId"] == "service/aws-prod-router/aws-prod-router"
    router_spec = router_policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert router_spec["predefinedMetricSpecification"]["predefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    # A fixed-size endpoint gets no scaling resources.
    assert previews["aws-dev"].by_type("aws:appautoscaling/target:Target") == []


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_endpoint_config_is_replaced_not_renamed(previews, stack):
    """Endpoint configurations are auto-named so an update creates the new one before deleting the old
    (terraform-provider-aws#40048); the endpoint keeps its fixed name."""
    p = previews[stack]
    (config,) = p.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert "name" not in config.inputs
    (endpoint,) = p.by_type("aws:sagemaker/endpoint:Endpoint")
    assert endpoint.inputs["endpointConfigName"] == config.computed["name"]


def test_no_resource_class_of_ours_has_runtime_annotations():
    """The SDK resolves a resource class's annotations (typing.get_type_hints) on every registration of every
    instance, for its output types: an annotated class pays that once per resource (about a tenth of a Hugging
    Face endpoint's preview). Our outputs are attributes set in __init__, or declared under TYPE_CHECKING."""
    import importlib
    import inspect
    import pkgutil

    import components

    for info in pkgutil.walk_packages(components.__path__, "components."):
        importlib.import_module(info.name)

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    ours = {c for c in subclasses(pulumi.Resource) if c.__module__.startswith("components.")}
    assert len(ours) > 20, sorted(c.__qualname__ for c in ours)
    assert {f"{c.__module__}.{c.__qualname__}": inspect.get_annotations(c) for c in ours
            if inspect.get_annotations(c)} == {}
