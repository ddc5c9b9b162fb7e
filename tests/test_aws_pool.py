"""GPU instance pools on EC2 (the `aws-pool` target kind, issue 10): the aws-pool stack's plan against the
invariants a security reviewer checks, the config errors, the cost and the host options."""

from __future__ import annotations

import base64

import pytest

from components.catalog.pricing import lookup
from components.config import ConfigError
from components.cost import estimate as price
from components.cost import resources_from_preview
from components.schema import Usage
from components.targets.registry import hosts

from .conftest import policy_doc
from .test_config import REV, as_pulumi, load_environment

POOL = "aws:autoscaling/group:Group"


@pytest.fixture(scope="module")
def pool(previews):
    return previews["aws-pool"]


def only(p, token):
    (r,) = p.by_type(token)
    return r


def named(p, name):
    (r,) = [r for r in p.resources if r.name == name]
    return r


def test_the_launch_template_pins_the_dlami_and_requires_imdsv2(pool):
    template = only(pool, "aws:ec2/launchTemplate:LaunchTemplate")
    inputs = template.inputs
    assert inputs["imageId"].startswith("ami-0") and "ssm" not in inputs["imageId"]  # resolved, then pinned
    assert inputs["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                         "httpPutResponseHopLimit": 1, "instanceMetadataTags": "disabled"}
    assert [n["associatePublicIpAddress"] for n in inputs["networkInterfaces"]] == ["false"]
    key = only(pool, "aws:kms/key:Key").computed["arn"]
    volumes = [m["ebs"] for m in inputs["blockDeviceMappings"]]
    assert volumes and all(v["encrypted"] == "true" and v["kmsKeyId"] == key for v in volumes)
    # Every listed type has local NVMe: the model cache lives there, no EBS cache volume.
    assert len(volumes) == 1
    assert "keyName" not in inputs  # no SSH key pair


# The aws-pool stack serves a checkpoint of its own bucket (tests/test_aws_own_models.py): the same pool serving a
# gated Hub model, with the token that takes.
HUB_MODEL = {"name": "llama-8b", "id": "meta-llama/Llama-3.1-8B-Instruct",
             "revision": "0e9e39f249a16976918f6564b8830bc894c89659", "engine": "vllm", "maxContext": 8192}


def test_the_token_is_read_at_boot_never_written_into_the_template(project):
    import json
    import runpy

    from selfhost.preview import run_program
    from selfhost.project import stack_config

    cfg, secret_keys = stack_config(project, "aws-pool")
    cfg.update({"selfhost-llm:models": json.dumps([HUB_MODEL]), "selfhost-llm:hfToken": "hf_not_a_real_token"})
    pool = run_program(project.name, "aws-pool", cfg, {*secret_keys, "selfhost-llm:hfToken"},
                       lambda: runpy.run_path(str(project.root / "__main__.py"), run_name="__main__"))
    template = only(pool, "aws:ec2/launchTemplate:LaunchTemplate")
    script = base64.b64decode(template.inputs["userData"]).decode()
    secret = named(pool, "aws-pool-hf-token-secret").computed["arn"]
    assert f"aws secretsmanager get-secret-value --region us-east-1 --secret-id {secret}" in script
    assert "HF_TOKEN=" not in script and "-e HF_TOKEN_PATH=/run/secrets/hf_token" in script
    assert template.secret_paths == []
    for version in pool.by_type("aws:secretsmanager/secretVersion:SecretVersion"):
        assert version.secret_paths == ["secretString"]
    # The engine's flags come from the engine catalog, the same ones every target uses.
    assert "--max-model-len 8192" in script and "--revision 0e9e39f249a16976918f6564b8830bc894c89659" in script
    image = only(pool, "docker-build:index:Image")
    assert image.computed["ref"] in script and script.rstrip().endswith(" openai")


def test_no_port_22_no_public_ingress_lb_from_the_vpc_only(pool):
    groups = {g.name: g for g in pool.by_type("aws:ec2/securityGroup:SecurityGroup")}
    for g in groups.values():
        for rule in g.inputs.get("ingress", []):
            assert not (rule["fromPort"] <= 22 <= rule["toPort"]), g.name
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), g.name
    lb_sg, instance_sg = groups["aws-pool-chat-lb-sg"], groups["aws-pool-chat-sg"]
    assert lb_sg.inputs["ingress"] == [{"protocol": "tcp", "fromPort": 443, "toPort": 443,
                                        "cidrBlocks": ["10.30.0.0/16"], "description": "clients in the VPC"}]
    [rule] = instance_sg.inputs["ingress"]
    assert rule["securityGroups"] == [lb_sg.id] and lb_sg.id.startswith("sg-")
    assert (rule["fromPort"], rule["toPort"]) == (8080, 8080) and "cidrBlocks" not in rule


def test_the_group_mixes_on_demand_and_spot_and_rolls_back(pool):
    group = only(pool, POOL).inputs
    mixed = group["mixedInstancesPolicy"]
    assert mixed["instancesDistribution"] == {"onDemandBaseCapacity": 1, "onDemandPercentageAboveBaseCapacity": 0,
                                              "spotAllocationStrategy": "price-capacity-optimized"}
    types = [o["instanceType"] for o in mixed["launchTemplate"]["overrides"]]
    assert len(types) >= 4 and types[0] == "g6.xlarge"
    version = mixed["launchTemplate"]["launchTemplateSpecification"]["version"]
    assert version.isdigit()  # never $Latest: refresh rollback needs a fixed version
    assert group["capacityRebalance"] is True and group["healthCheckType"] == "ELB"
    assert group["healthCheckGracePeriod"] >= 300
    assert group["instanceRefresh"]["preferences"]["autoRollback"] is True
    assert group["instanceRefresh"]["preferences"]["minHealthyPercentage"] == 90
    assert (group["minSize"], group["maxSize"]) == (1, 6)
    subnets = {s.id for s in pool.by_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(group["vpcZoneIdentifiers"]) == subnets and len(subnets) == 3
    assert "warmPool" not in group


def test_the_internal_load_balancer_keeps_streams(pool):
    lb = only(pool, "aws:lb/loadBalancer:LoadBalancer").inputs
    assert lb["internal"] is True and lb["loadBalancerType"] == "application" and lb["idleTimeout"] == 300
    assert lb["dropInvalidHeaderFields"] is True
    tg = only(pool, "aws:lb/targetGroup:TargetGroup").inputs
    assert tg["healthCheck"]["path"] == "/health" and tg["healthCheck"]["matcher"] == "200"
    assert tg["deregistrationDelay"] == 300 and tg["port"] == 8080
    policy = only(pool, "aws:autoscaling/policy:Policy").inputs["targetTrackingConfiguration"]
    assert policy["predefinedMetricSpecification"]["predefinedMetricType"] == "ALBRequestCountPerTarget"
    chat = pool.outputs["endpoints"]["chat"]
    assert chat["kind"] == "aws-pool" and chat["auth"] == "api-key"
    assert chat["openaiBaseUrl"].startswith("https://internal-") and chat["openaiBaseUrl"].endswith("/v1")
    assert chat["poolName"] == "aws-pool-chat"


def test_the_instance_role_names_exactly_what_it_touches(pool):
    policy = next(rp for rp in pool.by_type("aws:iam/rolePolicy:RolePolicy") if rp.name == "aws-pool-chat-policy")
    by_sid = {s["Sid"]: s for s in policy_doc(policy.inputs["policy"])["Statement"]}
    repo = only(pool, "aws:ecr/repository:Repository").computed["arn"]
    assert by_sid["PullOurImage"]["Resource"] == repo
    assert "ReadHfToken" not in by_sid  # the stack's model comes from its own bucket, not the Hub
    assert by_sid["ReadApiKeys"] == {"Sid": "ReadApiKeys", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                     "Resource": named(pool, "aws-pool-chat-api-keys").computed["arn"]}
    logs = next(g for g in pool.by_type("aws:cloudwatch/logGroup:LogGroup") if g.name == "aws-pool-chat-logs")
    assert by_sid["WriteOwnLogs"]["Resource"] == logs.computed["arn"] + ":*"
    assert by_sid["LogInToEcr"]["Resource"] == "*" and by_sid["LogInToEcr"]["Action"] == "ecr:GetAuthorizationToken"
    (ssm,) = pool.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert ssm.inputs["policyArn"] == "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def test_the_pool_is_priced_on_demand_and_spot(pool):
    est = price(resources_from_preview(pool.to_json()), {"aws": "us-east-1"}, Usage.from_wire({}), lookup)
    by_desc = {i.description: i for i in est.items}
    on_demand = next(i for d, i in by_desc.items() if d.startswith("g6.xlarge on demand"))
    spot = next(i for d, i in by_desc.items() if d.startswith("g6.xlarge spot"))
    assert on_demand.unit_usd == 0.8048 and spot.unit_usd == 0.3816  # the catalog's us-east-1 rows
    assert on_demand.quantity[0] == 730 and spot.quantity[0] == 0  # one instance: the on-demand base
    assert on_demand.quantity[2] == 730 and spot.quantity[2] == 5 * 730  # six: the base and five spot
    # The load balancer's hours and the instances' gp3 volumes are priced too: nothing is left out.
    by_type = {i.type: i for i in est.items}
    assert by_type["aws:lb/loadBalancer:LoadBalancer"].unit_usd == 0.0225
    assert by_type["aws:ec2/launchTemplate:LaunchTemplate"].unit_usd == 0.08
    assert est.unknown == [] and est.usd_per_1m_tokens is not None


def test_selfhost_size_lists_pool_hosts_beside_sagemaker():
    rows = hosts(("aws",), {"aws": "us-east-1"}, lookup)
    names = {(h.target, h.name) for h in rows}
    assert ("sagemaker", "ml.g6.xlarge") in names
    assert ("aws-pool", "g6.xlarge (spot)") in names and ("aws-pool", "g6.xlarge (on demand)") in names


POOL_BASE = {
    "aws:region": "us-east-1",
    "selfhost-llm:network": {"nat": "single"},
    "selfhost-llm:models": [{"name": "qwen", "id": "Qwen/Qwen2.5-1.5B-Instruct", "revision": REV, "maxContext": 8192}],
}


def pool_problems(**target) -> list[str]:
    cfg = {**POOL_BASE, "selfhost-llm:targets": [{"kind": "aws-pool", "name": "chat", "model": "qwen",
                                                  "instanceTypes": ["g6.xlarge"], **target}]}
    with pytest.raises(ConfigError) as info:
        load_environment("test", as_pulumi(cfg), set())
    return [str(p) for p in info.value.problems]


def test_pool_config_errors_name_every_key_at_once():
    found = pool_problems(instanceTypes=["m5.xlarge", "g6.xlarge"], warmPool=True, onDemandBase=3,
                          scaling={"maxReplicas": 2})
    assert any(p.startswith("selfhost-llm:targets[0].instanceTypes[0]: 'm5.xlarge': not an EC2 GPU instance type")
               for p in found)
    assert any(p.startswith("selfhost-llm:targets[0].warmPool: true: warm pools cannot be used with spot")
               for p in found)
    assert any(p.startswith("selfhost-llm:targets[0].onDemandBase: 3: above scaling.maxReplicas (2)") for p in found)


def test_one_pool_one_memory_class():
    [problem] = pool_problems(instanceTypes=["g6.xlarge", "g6e.xlarge"])
    assert "instanceTypes[1]: 'g6e.xlarge'" in problem and "another memory class" in problem
    assert "g5.xlarge" in problem  # the types that would do


def test_a_model_too_large_for_the_pool_lists_what_fits():
    big = {"name": "big", "id": "meta-llama/Llama-3.1-70B-Instruct", "revision": REV, "maxContext": 8192}
    cfg = {**POOL_BASE, "selfhost-llm:models": [big], "selfhost-llm:hfToken": "x",
           "selfhost-llm:targets": [{"kind": "aws-pool", "name": "chat", "model": "big",
                                     "instanceTypes": ["g6.xlarge"]}]}
    with pytest.raises(ConfigError) as info:
        load_environment("test", as_pulumi(cfg), {"selfhost-llm:hfToken"})
    [problem] = [str(p) for p in info.value.problems]
    assert problem.startswith("selfhost-llm:targets[0].instanceTypes[0]: 'g6.xlarge': model 'big' needs")
    assert "(spot)" in problem  # the pool hosts that fit, cheapest first


def test_spot_share_outside_0_to_1_is_one_clear_error():
    [problem] = pool_problems(spotShare=1.5)
    assert problem.startswith("selfhost-llm:targets[0].spotShare: 1.5:")


def test_the_kind_list_in_errors_comes_from_the_registry():
    cfg = {**POOL_BASE, "selfhost-llm:targets": [{"kind": "nope", "name": "chat", "model": "qwen"}]}
    with pytest.raises(ConfigError) as info:
        load_environment("test", as_pulumi(cfg), set())
    assert "allowed: sagemaker, vertex, aws-pool" in str(info.value)


def test_a_warm_pool_is_on_demand_single_type_and_stopped(project):
    from .test_own_image import run_stack

    def warm(t: dict) -> None:
        t.update(warmPool=True, spotShare=0, instanceTypes=["g6.xlarge"])

    p = run_stack(project, "aws-pool", warm)
    group = only(p, POOL).inputs
    assert group["warmPool"] == {"poolState": "Stopped", "minSize": 1}
    assert "mixedInstancesPolicy" not in group and group["launchTemplate"]["version"].isdigit()
    est = price(resources_from_preview(p.to_json()), {"aws": "us-east-1"}, Usage.from_wire({}), lookup)
    on_demand = next(i for i in est.items if i.description.startswith("g6.xlarge on demand"))
    assert on_demand.quantity[2] == 6 * 730  # every instance on demand


def test_a_warm_pool_takes_one_instance_type():
    found = pool_problems(warmPool=True, spotShare=0, instanceTypes=["g6.xlarge", "g5.xlarge"])
    assert found == ["selfhost-llm:targets[0].instanceTypes: [\"g6.xlarge\", \"g5.xlarge\"]: a warm pool cannot be "
                     "used with a mixed instances policy (Auto Scaling PutWarmPool): one instance type; allowed: "
                     "g6.xlarge"]


# ---------------------------------------------------------------------------------------------------------
# TLS, access logs and API keys (issue 25)


def run_pool(project, edit=lambda t: None, **config: str):
    """The aws-pool stack previewed with `edit` applied to its target and `config` (stack keys) set."""
    import json
    import runpy

    from selfhost.preview import run_program
    from selfhost.project import stack_config

    cfg, secret_keys = stack_config(project, "aws-pool")
    targets = json.loads(cfg["selfhost-llm:targets"])
    for t in targets:
        edit(t)
    cfg["selfhost-llm:targets"] = json.dumps(targets)
    cfg.update({f"selfhost-llm:{k}": v for k, v in config.items()})
    return run_program(project.name, "aws-pool", cfg, secret_keys,
                       lambda: runpy.run_path(str(project.root / "__main__.py"), run_name="__main__"))


def test_the_load_balancer_listens_with_https_only_tls_1_2_and_up(pool):
    (listener,) = pool.by_type("aws:lb/listener:Listener")
    inputs = listener.inputs
    assert (inputs["port"], inputs["protocol"]) == (443, "HTTPS")
    assert inputs["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    # No certificate given: the stack's CA issued one for the load balancer's name, imported into ACM.
    acm = only(pool, "aws:acm/certificate:Certificate")
    assert inputs["certificateArn"] == acm.computed["arn"] and acm.computed["arn"].startswith("arn:aws:acm:us-east-1:")
    assert acm.secret_paths == ["privateKey"]
    lb = only(pool, "aws:lb/loadBalancer:LoadBalancer")
    issued = named(pool, "aws-pool-chat-ca-alb-csr").inputs
    assert issued["dnsNames"] == [lb.computed["dnsName"]] and issued["subject"]["commonName"] == lb.computed["dnsName"]
    ca = named(pool, "aws-pool-chat-ca-cert").inputs
    assert ca["isCaCertificate"] is True and ca["allowedUses"] == ["cert_signing", "crl_signing"]
    assert ca["validityPeriodHours"] == 10 * 365 * 24
    cert = named(pool, "aws-pool-chat-ca-alb-cert").inputs
    assert "server_auth" in cert["allowedUses"] and cert["validityPeriodHours"] == 365 * 24
    assert cert["earlyRenewalHours"] > 0
    for key in pool.by_type("tls:index/privateKey:PrivateKey"):
        assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")
    # Private keys reach other resources only as secrets.
    assert named(pool, "aws-pool-chat-ca-alb-cert").secret_paths == ["caPrivateKeyPem"]
    assert named(pool, "aws-pool-chat-ca-cert").secret_paths == ["privateKeyPem"]
    assert named(pool, "aws-pool-chat-ca-alb-csr").secret_paths == ["privateKeyPem"]
    assert acm.inputs["certificateChain"] == named(pool, "aws-pool-chat-ca-cert").computed["certPem"]
    chat = pool.outputs["endpoints"]["chat"]
    assert chat["caCertificate"] == acm.inputs["certificateChain"]


def test_the_target_group_and_its_health_check_speak_https(pool):
    tg = only(pool, "aws:lb/targetGroup:TargetGroup").inputs
    assert (tg["protocol"], tg["port"]) == ("HTTPS", 8080)
    assert tg["healthCheck"]["protocol"] == "HTTPS" and tg["healthCheck"]["path"] == "/health"
    script = base64.b64decode(only(pool, "aws:ec2/launchTemplate:LaunchTemplate").inputs["userData"]).decode()
    # The instance makes its own key and certificate at boot, root-only, mounted read-only.
    lines = script.splitlines()
    openssl = next(i for i, line in enumerate(lines) if line.startswith("openssl req -x509"))
    assert lines.index("umask 077") < openssl and lines.index("install -d -m 700 /run/selfhost") < openssl
    assert "-keyout /run/selfhost/tls.key -out /run/selfhost/tls.crt" in lines[openssl]
    assert "-v /run/selfhost/tls.key:/run/secrets/tls.key:ro" in script
    assert "-e SELFHOST_TLS_CERT_FILE=/run/secrets/tls.crt -e SELFHOST_TLS_KEY_FILE=/run/secrets/tls.key" in script


def test_the_load_balancer_logs_requests_into_the_access_log_bucket(pool):
    lb = only(pool, "aws:lb/loadBalancer:LoadBalancer").inputs
    bucket = named(pool, "aws-pool-artifacts-access-logs-bucket")
    assert lb["accessLogs"] == {"bucket": bucket.computed["bucket"], "prefix": "alb/aws-pool-chat", "enabled": True}
    assert lb["dropInvalidHeaderFields"] is True
    assert lb["enableDeletionProtection"] is False  # a staging stack
    # ELB log delivery may write there (us-east-1: the ELB account), under the prefix, for this account only.
    policy = policy_doc(named(pool, "aws-pool-artifacts-access-logs-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["AlbAccessLogs"]["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}
    assert by_sid["AlbAccessLogs"]["Resource"] == f"{bucket.computed['arn']}/alb/*/AWSLogs/123456789012/*"
    assert by_sid["AlbAccessLogs"]["Action"] == "s3:PutObject"


def test_stacks_without_a_load_balancer_admit_no_load_balancer_logs(previews):
    """The access-log bucket admits ELB log delivery exactly where the stack has a load balancer (a pool's, or the
    router's on aws-prod), which logs there."""
    admitting = {}
    for stack, p in previews.items():
        policies = [r for r in p.resources if r.name == f"{stack}-artifacts-access-logs-policy"]
        if not policies:
            continue
        (policy,) = policies
        sids = {s["Sid"] for s in policy_doc(policy.inputs["policy"])["Statement"]}
        admitting[stack] = "AlbAccessLogs" in sids
        assert admitting[stack] == bool(p.by_type("aws:lb/loadBalancer:LoadBalancer")), stack
    assert admitting["aws-dev"] is False and admitting["aws-prod"] is admitting["aws-pool"] is True
    # aws-prod's one load balancer is its router's, logging under its own prefix of that bucket.
    prod = previews["aws-prod"]
    bucket = named(prod, "aws-prod-artifacts-access-logs-bucket")
    (lb,) = prod.by_type("aws:lb/loadBalancer:LoadBalancer")
    assert lb.name == "aws-prod-router-alb"
    assert lb.inputs["accessLogs"] == {"bucket": bucket.computed["bucket"], "prefix": "alb/aws-prod-router",
                                       "enabled": True}


def test_deletion_protection_in_the_production_tier(project):
    p = run_pool(project, tier="production")
    assert only(p, "aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True


def test_api_keys_live_in_secrets_manager_never_in_the_template_or_container(pool):
    secret = named(pool, "aws-pool-chat-api-keys")
    key = only(pool, "aws:kms/key:Key").computed["arn"]
    assert secret.inputs["kmsKeyId"] == key
    version = named(pool, "aws-pool-chat-api-keys-version")
    assert version.inputs["secretId"] == secret.id and version.secret_paths == ["secretString"]
    (password,) = pool.by_type("random:index/randomPassword:RandomPassword")
    assert password.name == "aws-pool-chat-key-default" and password.inputs["length"] >= 32
    template = only(pool, "aws:ec2/launchTemplate:LaunchTemplate")
    script = base64.b64decode(template.inputs["userData"]).decode()
    arn = secret.computed["arn"]
    lines = script.splitlines()
    # Pinned to the secret's version: new keys make a new launch template version, which the refresh rolls out.
    fetch = f"aws secretsmanager get-secret-value --region us-east-1 --secret-id {arn} --version-id " \
            f"{version.computed['versionId']} --query SecretString --output text > /run/selfhost/api_keys"
    assert fetch in lines and lines.index("umask 077") < lines.index(fetch)
    assert ("-v /run/selfhost/api_keys:/run/secrets/api_keys:ro -e SELFHOST_API_KEYS_FILE=/run/secrets/api_keys"
            in script)
    assert password.computed["result"] not in script and template.secret_paths == []
    chat = pool.outputs["endpoints"]["chat"]
    assert chat["auth"] == "api-key" and chat["apiKeys"] == "[secret]"
    assert "endpoints.chat.apiKeys" in pool.secret_outputs
    # The policy pack's secrets rules hold: nothing secret in user data, the template or a container's environment.
    from components.policies import check

    report = check(resources_from_preview(pool.to_json()), None, pool.outputs)
    assert not report.violations


def test_each_api_key_id_gets_its_own_key(project):
    p = run_pool(project, lambda t: t.update(apiKeys=["app", "batch"]))
    assert sorted(r.name for r in p.by_type("random:index/randomPassword:RandomPassword")) == [
        "aws-pool-chat-key-app", "aws-pool-chat-key-batch"]
    assert len([r for r in p.resources if r.name == "aws-pool-chat-api-keys"]) == 1


def test_a_given_certificate_is_used_instead_of_the_stacks_ca(project):
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
    p = run_pool(project, lambda t: t.update(tls={"certificateArn": arn}))
    assert only(p, "aws:lb/listener:Listener").inputs["certificateArn"] == arn
    assert not p.by_type("aws:acm/certificate:Certificate")
    assert not [r for r in p.resources if r.type.startswith("tls:")]
    assert "caCertificate" not in p.outputs["endpoints"]["chat"]


def test_a_certificate_arn_must_be_an_acm_arn():
    [problem] = pool_problems(tls={"certificateArn": "arn:aws:iam::123456789012:server-certificate/x"})
    assert problem.startswith("selfhost-llm:targets[0].tls.certificateArn:")


def test_the_load_balancer_rules_read_the_plan(pool, project):
    from components.policies import RULES
    from components.policy import Plan

    by_id = {r.id: r for r in RULES}
    items = resources_from_preview(pool.to_json())
    staging = by_id["aws-lb-deletion-protection"].run(Plan(items, outputs=pool.outputs))
    assert [f.exempt is not None for f in staging] == [True]  # staging: reported, not a violation
    prod = run_pool(project, tier="production")
    assert by_id["aws-lb-deletion-protection"].run(Plan(resources_from_preview(prod.to_json()),
                                                        outputs=prod.outputs)) == []
    unprotected = [r if r.type != "aws:lb/loadBalancer:LoadBalancer" else
                   type(r)(**{**r.__dict__, "inputs": {**r.inputs, "enableDeletionProtection": False}})
                   for r in resources_from_preview(prod.to_json())]
    [finding] = by_id["aws-lb-deletion-protection"].run(Plan(unprotected, outputs=prod.outputs))
    assert finding.exempt is None and "production" in finding.message
    # Secrets rotate by configuration: every secret is reported, with why, never a violation.
    rotation = by_id["aws-secret-rotation"].run(Plan(items, outputs=pool.outputs))
    assert sorted(f.resource for f in rotation) == ["aws-pool-chat-api-keys"]
    assert all(f.exempt for f in rotation)
    # A target group that checks health over HTTP is caught, as is a TLS policy that admits TLS 1.0.
    def changed(token, change):
        return [r if r.type != token else type(r)(**{**r.__dict__, "inputs": change(dict(r.inputs))}) for r in items]

    http_check = changed("aws:lb/targetGroup:TargetGroup",
                         lambda i: {**i, "healthCheck": {**i["healthCheck"], "protocol": "HTTP"}})
    assert by_id["aws-lb-https"].run(Plan(http_check))
    old_tls = changed("aws:lb/listener:Listener", lambda i: {**i, "sslPolicy": "ELBSecurityPolicy-2016-08"})
    [finding] = by_id["aws-lb-https"].run(Plan(old_tls))
    assert "below TLS 1.2" in finding.message


def test_the_alarm_thresholds_come_from_the_config(project):
    """`alarms` in the target's config sets what the pool's CloudWatch alarms fire at (defaults: PoolAlarms)."""
    preview = run_pool(project, lambda t: t.update(alarms={"target5xxPercent": 2.5, "p95ResponseSeconds": 45}))
    alarms = {a.inputs["name"]: a.inputs for a in preview.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms["aws-pool-chat-target-5xx-rate"]["threshold"] == 2.5
    assert alarms["aws-pool-chat-p95-response-time"]["threshold"] == 45
