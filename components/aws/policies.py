"""AWS's policy rules: S3 buckets, KMS keys, log groups, Secrets Manager, ECR, EC2 (metadata service, public IPs,
volumes, security groups, VPCs), SageMaker, IAM, load balancers and ECS on Fargate. `Aws.policy_rules`
(components/targets/aws.py) hands them to the registry; components/policies.py runs them after the generic rules.

Also what two generic rules ask of the platform: where its resources carry a boot script (`BOOT_SCRIPTS`, for
`secrets-not-in-user-data`) and a container's environment (`CONTAINER_ENVIRONMENTS`, for
`secrets-not-in-container-env`).

Pure: no provider SDK.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

from ..catalog.iam import ACTIONS_WITHOUT_RESOURCE_LEVEL
from ..catalog.sagemaker_instances import INSTANCE_STORAGE_FAMILIES
from ..cost_rules import Resource
from ..policy import (
    OPEN,
    BootScript,
    ContainerEnvironment,
    Finding,
    Plan,
    Rule,
    dig,
    json_doc,
    listed,
    rule_decorator,
    truthy,
)
from .tags import ACCESS_LOGS_PURPOSE

RULES: list[Rule] = []
rule = rule_decorator(RULES)


@rule("aws-s3-kms", "Buckets are encrypted by default with a customer-managed KMS key.", "high",
      "Give the bucket a server-side encryption configuration with sseAlgorithm aws:kms and the environment key.",
      checkov=("CKV_AWS_145",))
def _s3_kms(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for bucket in plan.of("aws:s3/bucket:Bucket"):
        configs = plan.beside(bucket, "aws:s3/bucketServerSideEncryptionConfiguration:"
                                      "BucketServerSideEncryptionConfiguration")
        default = dig(configs[0].inputs, "rules", 0, "applyServerSideEncryptionByDefault") if configs else None
        if _access_logs(bucket) and default and default.get("sseAlgorithm") == "AES256":
            yield Finding("aws-s3-kms", bucket.name, "encrypted with S3-managed keys", exempt=(
                "S3 server access logging delivers only to buckets whose default encryption is SSE-S3, not a KMS key "
                "(S3 user guide, server access logging), and so does load balancer access logging (ELB user guide: "
                "SSE-S3 is the only server-side encryption it supports)"))
        elif not default or default.get("sseAlgorithm") != "aws:kms" or not default.get("kmsMasterKeyId"):
            yield bucket, "not encrypted by default with a customer-managed KMS key"


def _access_logs(bucket: Resource) -> bool:
    return (bucket.inputs.get("tags") or {}).get(ACCESS_LOGS_PURPOSE[0]) == ACCESS_LOGS_PURPOSE[1]


@rule("aws-s3-access-logging", "Buckets log every access (the artifacts bucket holds captured prompts).", "medium",
      "Add a BucketLogging that delivers to the environment's access-log bucket.", checkov=("CKV_AWS_18",))
def _s3_logging(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for bucket in plan.of("aws:s3/bucket:Bucket"):
        if _access_logs(bucket):
            yield Finding("aws-s3-access-logging", bucket.name, "not logged", exempt=(
                "it is the access-log bucket: logging it into itself would log its own log writes without end"))
        elif not plan.beside(bucket, "aws:s3/bucketLogging:BucketLogging"):
            yield bucket, "its accesses are not logged"


@rule("aws-s3-abort-incomplete-uploads", "Bucket lifecycles remove the parts of uploads that never completed.",
      "low", "Add a lifecycle rule with abortIncompleteMultipartUpload.daysAfterInitiation.",
      checkov=("CKV_AWS_300",))
def _s3_multipart(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for bucket in plan.of("aws:s3/bucket:Bucket"):
        rules = [r for c in plan.beside(bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
                 for r in c.inputs.get("rules") or []]
        if not any(dig(r, "abortIncompleteMultipartUpload", "daysAfterInitiation") and r.get("status") == "Enabled"
                   for r in rules):
            yield bucket, "incomplete multipart uploads are kept (and billed) forever"


@rule("aws-s3-public-access-block", "Buckets block every form of public access.", "critical",
      "Add a BucketPublicAccessBlock with all four settings true.",
      checkov=("CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"))
def _s3_public(plan: Plan) -> Iterator[tuple[Resource, str]]:
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in plan.of("aws:s3/bucket:Bucket"):
        blocks = plan.beside(bucket, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        off = [k for k in keys if not blocks or not truthy(blocks[0].inputs.get(k))]
        if off:
            yield bucket, f"public access not blocked: {', '.join(off)}"


@rule("aws-s3-versioning", "Buckets keep object versions (weights and captured data survive an overwrite).",
      "medium", "Add a BucketVersioning with status Enabled.", checkov=("CKV_AWS_21",))
def _s3_versioning(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for bucket in plan.of("aws:s3/bucket:Bucket"):
        versioning = plan.beside(bucket, "aws:s3/bucketVersioning:BucketVersioning")
        if not versioning or dig(versioning[0].inputs, "versioningConfiguration", "status") != "Enabled":
            yield bucket, "versioning is not enabled"


@rule("aws-s3-tls-only", "Bucket policies refuse requests that do not use TLS.", "medium",
      "Add a bucket policy statement denying s3:* when aws:SecureTransport is false.")
def _s3_tls(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for bucket in plan.of("aws:s3/bucket:Bucket"):
        policies = [json_doc(p.inputs.get("policy")) for p in plan.beside(bucket, "aws:s3/bucketPolicy:BucketPolicy")]
        if not any(st.get("Effect") == "Deny" and "aws:SecureTransport" in json.dumps(st.get("Condition", {}))
                   for doc in policies for st in doc.get("Statement", [])):
            yield bucket, "no statement denies requests without TLS"


@rule("aws-kms-rotation", "Customer-managed KMS keys rotate yearly.", "medium", "Set enableKeyRotation: true.",
      checkov=("CKV_AWS_7",))
def _kms_rotation(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for key in plan.of("aws:kms/key:Key"):
        if not truthy(key.inputs.get("enableKeyRotation")):
            yield key, "key rotation is off"


@rule("aws-log-group-kms", "Log groups are encrypted with a customer-managed KMS key.", "medium",
      "Set the log group's kmsKeyId to the environment key.", checkov=("CKV_AWS_158",))
def _log_kms(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for group in plan.of("aws:cloudwatch/logGroup:LogGroup"):
        if not group.inputs.get("kmsKeyId"):
            yield group, "not encrypted with a customer-managed key"


@rule("aws-log-retention", "Log groups keep logs for a set period, never forever by default.", "low",
      "Set retentionInDays (network.flowLogRetentionDays for flow logs).", checkov=("CKV_AWS_66",))
def _log_retention(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for group in plan.of("aws:cloudwatch/logGroup:LogGroup"):
        if not group.inputs.get("retentionInDays"):
            yield group, "no retention period"


@rule("aws-log-retention-production", "Production log groups keep logs for at least a year.", "medium",
      "Leave logRetentionDays to the production tier's default (365) or set 365 or more.", checkov=("CKV_AWS_338",))
def _log_retention_production(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for group in plan.of("aws:cloudwatch/logGroup:LogGroup"):
        days = int(group.inputs.get("retentionInDays") or 0)
        if days >= 365:
            continue
        if plan.production:
            yield group, f"keeps logs {days} days in a production environment"
        else:
            yield Finding("aws-log-retention-production", group.name, f"keeps logs {days} days", exempt=(
                "not a production environment: below production, logs are kept for the tier's default period or "
                "logRetentionDays, what debugging needs; a year is the production tier's"))


@rule("aws-secret-kms", "Secrets Manager secrets are encrypted with a customer-managed KMS key.", "high",
      "Set the secret's kmsKeyId to the environment key.", checkov=("CKV_AWS_149",))
def _secret_kms(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for secret in plan.of("aws:secretsmanager/secret:Secret"):
        if not secret.inputs.get("kmsKeyId"):
            yield secret, "encrypted with the AWS-managed key only"


@rule("aws-ecr-scan-on-push", "Image repositories scan every pushed image for vulnerabilities.", "medium",
      "Set imageScanningConfiguration.scanOnPush: true.", checkov=("CKV_AWS_163",))
def _ecr_scan(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for repo in plan.of("aws:ecr/repository:Repository"):
        if not truthy(dig(repo.inputs, "imageScanningConfiguration", "scanOnPush")):
            yield repo, "images are not scanned on push"


@rule("aws-ecr-immutable-tags", "Image tags cannot be overwritten: a tag always names the image that was built.",
      "medium", "Set imageTagMutability: IMMUTABLE.", checkov=("CKV_AWS_51",))
def _ecr_immutable(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for repo in plan.of("aws:ecr/repository:Repository"):
        if repo.inputs.get("imageTagMutability") != "IMMUTABLE":
            yield repo, "tags are mutable"


@rule("aws-ecr-kms", "Image repositories are encrypted with a customer-managed KMS key.", "medium",
      "Set encryptionConfigurations to KMS with the environment key.", checkov=("CKV_AWS_136",))
def _ecr_kms(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for repo in plan.of("aws:ecr/repository:Repository"):
        config = dig(repo.inputs, "encryptionConfigurations", 0) or {}
        if config.get("encryptionType") != "KMS" or not config.get("kmsKey"):
            yield repo, "not encrypted with a customer-managed key"


@rule("aws-imdsv2", "Instances require IMDSv2 session tokens, with a hop limit that keeps containers out.",
      "high", "Set metadataOptions.httpTokens: required and httpPutResponseHopLimit: 1.", checkov=("CKV_AWS_79",))
def _imdsv2(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for template in plan.of("aws:ec2/launchTemplate:LaunchTemplate"):
        options = template.inputs.get("metadataOptions") or {}
        if options.get("httpTokens") != "required":
            yield template, "IMDSv1 is allowed (httpTokens is not required)"
        elif int(options.get("httpPutResponseHopLimit") or 1) > 1:
            yield template, "the metadata hop limit lets containers reach instance credentials"


@rule("aws-no-public-ip", "Serving instances get no public IP address.", "high",
      "Set associatePublicIpAddress: false on the launch template's interfaces; keep them in private subnets.",
      checkov=("CKV_AWS_88",))
def _aws_public_ip(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for template in plan.of("aws:ec2/launchTemplate:LaunchTemplate"):
        for nic in template.inputs.get("networkInterfaces") or [{}]:
            if truthy(nic.get("associatePublicIpAddress")) or "associatePublicIpAddress" not in nic:
                yield template, "its instances may get a public IP address"
    for subnet in plan.of("aws:ec2/subnet:Subnet"):
        if truthy(subnet.inputs.get("mapPublicIpOnLaunch")):
            yield subnet, "gives every instance launched in it a public IP address"


@rule("aws-ebs-encrypted", "Instance volumes are encrypted with a customer-managed KMS key.", "high",
      "Set encrypted: true and kmsKeyId on every blockDeviceMappings entry.", checkov=("CKV_AWS_8",))
def _ebs(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for template in plan.of("aws:ec2/launchTemplate:LaunchTemplate"):
        for mapping in template.inputs.get("blockDeviceMappings") or []:
            ebs = mapping.get("ebs") or {}
            if ebs and (not truthy(ebs.get("encrypted")) or not ebs.get("kmsKeyId")):
                yield template, f"volume {mapping.get('deviceName')} is not encrypted with the environment key"


@rule("aws-no-open-ingress", "No security group admits the internet (0.0.0.0/0 or ::/0), and none opens port 22.",
      "critical", "Admit only the VPC range or other security groups; use Session Manager instead of SSH.",
      checkov=("CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_260"))
def _aws_ingress(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for group in plan.of("aws:ec2/securityGroup:SecurityGroup"):
        for rule_ in group.inputs.get("ingress") or []:
            ports = range(int(rule_.get("fromPort", 0)), int(rule_.get("toPort", 65535)) + 1)
            if set(OPEN) & set((rule_.get("cidrBlocks") or []) + (rule_.get("ipv6CidrBlocks") or [])):
                yield group, f"ingress from the internet on ports {rule_.get('fromPort')}-{rule_.get('toPort')}"
            elif 22 in ports and rule_.get("protocol") in ("tcp", "-1", "all"):
                yield group, "opens port 22"


@rule("aws-vpc-flow-logs", "Every VPC logs its traffic.", "medium", "Add a FlowLog on the VPC.",
      checkov=("CKV2_AWS_11",))
def _flow_logs(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for vpc in plan.of("aws:ec2/vpc:Vpc"):
        if not plan.beside(vpc, "aws:ec2/flowLog:FlowLog"):
            yield vpc, "no flow log"


@rule("aws-default-security-group-closed", "The VPC's default security group allows nothing.", "medium",
      "Manage it with a DefaultSecurityGroup that has no ingress and no egress rules.", checkov=("CKV2_AWS_12",))
def _default_sg(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for vpc in plan.of("aws:ec2/vpc:Vpc"):
        groups = plan.beside(vpc, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
        if not groups or groups[0].inputs.get("ingress") or groups[0].inputs.get("egress"):
            yield vpc, "its default security group is not closed"


@rule("aws-sagemaker-kms", "SageMaker endpoint data (the instances' volumes) is encrypted with a customer-managed "
      "key, where SageMaker allows one.", "high",
      "Set the endpoint configuration's kmsKeyArn (SageMaker refuses it on hosts with local NVMe storage, which the "
      "hardware encrypts).", checkov=("CKV_AWS_98",))
def _sagemaker_kms(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for config in plan.of("aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
        families = {str(v.get("instanceType", "")).split(".")[1] for v in config.inputs.get("productionVariants") or []
                    if str(v.get("instanceType", "")).count(".") >= 2}
        if families & INSTANCE_STORAGE_FAMILIES:
            yield Finding("aws-sagemaker-kms", config.name, "no KMS key", exempt=(
                f"{', '.join(sorted(families))} hosts have local NVMe storage, encrypted in hardware; SageMaker "
                "rejects a KmsKeyId for them (CreateEndpointConfig API reference)"))
        elif not config.inputs.get("kmsKeyArn"):
            yield config, "its instances' volumes are not encrypted with a customer-managed key"


@rule("aws-sagemaker-private", "SageMaker models run inside the environment's private subnets.", "high",
      "Give the model a vpcConfig with the private subnets and a security group.")
def _sagemaker_vpc(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for model in plan.of("aws:sagemaker/model:Model"):
        if not dig(model.inputs, "vpcConfig", "subnets"):
            yield model, "not attached to the VPC"


@rule("aws-sagemaker-network-isolation", "A SageMaker model whose weights come from S3 runs with network "
      "isolation: the container reaches nothing.", "high", "Set enableNetworkIsolation: true (models[].source: s3).",
      checkov=("CKV_AWS_370",))
def _sagemaker_isolation(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for model in plan.of("aws:sagemaker/model:Model"):
        if truthy(model.inputs.get("enableNetworkIsolation")):
            continue
        if dig(model.inputs, "primaryContainer", "modelDataSource") or dig(model.inputs, "primaryContainer",
                                                                             "modelDataUrl"):
            yield model, "weights come from S3 but the container may reach the network"
        else:
            yield Finding("aws-sagemaker-network-isolation", model.name, "not network-isolated", exempt=(
                "the container downloads its weights from the Hugging Face Hub at start, which isolation forbids; "
                "stage them to S3 (`selfhost stage`, models[].source: s3) to isolate it"))


@rule("aws-iam-no-wildcard-actions", "IAM policies name their actions: no wildcards.", "critical",
      "List the exact actions the role needs.")
def _iam_actions(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r in plan.of("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        for st in json_doc(r.inputs.get("policy")).get("Statement", []):
            wild = [a for a in listed(st.get("Action")) if st.get("Effect") == "Allow" and a and "*" in a]
            if wild:
                yield r, f"wildcard action {wild[0]}"


@rule("aws-iam-scoped-resources", "IAM policies grant on named resources; '*' only for actions AWS authorizes on "
      "nothing narrower (the Service Authorization Reference lists no resource type for them).", "high",
      "Name the resources' ARNs; see components/catalog/iam.py for the actions that take only '*'.",
      checkov=("CKV_AWS_355",))
def _iam_resources(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r in plan.of("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        for st in json_doc(r.inputs.get("policy")).get("Statement", []):
            actions = set(listed(st.get("Action")))
            if st.get("Effect") == "Allow" and "*" in listed(st.get("Resource")) and not actions <= \
                    ACTIONS_WITHOUT_RESOURCE_LEVEL:
                yield r, (f"Resource '*' for {sorted(actions - ACTIONS_WITHOUT_RESOURCE_LEVEL)}, which AWS can scope "
                          "to named resources")


@rule("aws-lb-internal", "Load balancers in front of models are internal: reachable from the VPC only.", "high",
      "Set internal: true (front a public entry point with an API gateway that authenticates).")
def _lb_internal(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for lb in plan.of("aws:lb/loadBalancer:LoadBalancer"):
        if not truthy(lb.inputs.get("internal")):
            yield lb, "faces the internet"


# TLS 1.2 and up (Elastic Load Balancing's security policies whose names say so; FIPS and PQ variants included).
TLS12_POLICIES = ("ELBSecurityPolicy-TLS13-1-2", "ELBSecurityPolicy-TLS-1-2", "ELBSecurityPolicy-FS-1-2",
                  "ELBSecurityPolicy-TLS13-1-3")


@rule("aws-lb-https", "Load balancers take HTTPS only, TLS 1.2 and up, and speak HTTPS to their targets.", "high",
      "Listen with protocol HTTPS, a certificate and sslPolicy ELBSecurityPolicy-TLS13-1-2-2021-06; give target "
      "groups and their health checks protocol HTTPS.", checkov=("CKV_AWS_2", "CKV_AWS_103", "CKV_AWS_378",
                                                                  "CKV2_AWS_20"))
def _lb_https(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for listener in plan.of("aws:lb/listener:Listener"):
        if listener.inputs.get("protocol") != "HTTPS":
            yield listener, f"listens with {listener.inputs.get('protocol') or 'HTTP'}"
        elif not str(listener.inputs.get("sslPolicy") or "").startswith(TLS12_POLICIES):
            yield listener, f"TLS policy {listener.inputs.get('sslPolicy')} admits versions below TLS 1.2"
    for group in plan.of("aws:lb/targetGroup:TargetGroup"):
        protocols = {group.inputs.get("protocol"), dig(group.inputs, "healthCheck", "protocol")}
        if protocols != {"HTTPS"}:
            yield group, "speaks HTTP to its targets (traffic or health checks)"


@rule("aws-lb-access-logs", "Load balancers log every request into the environment's access-log bucket.", "medium",
      "Set accessLogs {bucket: the access-log bucket, enabled: true}.", checkov=("CKV_AWS_91",))
def _lb_access_logs(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for lb in plan.of("aws:lb/loadBalancer:LoadBalancer"):
        logs = lb.inputs.get("accessLogs") or {}
        if not logs.get("bucket") or not truthy(logs.get("enabled")):
            yield lb, "its requests are not logged"


@rule("aws-lb-deletion-protection", "Production load balancers are protected from deletion.", "medium",
      "Leave the production tier to turn enableDeletionProtection on.", checkov=("CKV_AWS_150",))
def _lb_deletion_protection(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for lb in plan.of("aws:lb/loadBalancer:LoadBalancer"):
        if truthy(lb.inputs.get("enableDeletionProtection")):
            continue
        if plan.production:
            yield lb, "not protected from deletion in a production environment"
        else:
            yield Finding("aws-lb-deletion-protection", lb.name, "not protected from deletion", exempt=(
                "not a production environment: a development or staging stack is torn down with `pulumi destroy`"))


@rule("aws-secret-rotation", "Secrets Manager secrets are rotated.", "medium",
      "Rotate by configuration: new apiKeys ids (the instances read the new keys on the group's instance refresh); "
      "a new hfToken (`pulumi config set --secret hfToken`).", checkov=("CKV2_AWS_57",))
def _secret_rotation(plan: Plan) -> Iterator[Finding]:
    for secret in plan.of("aws:secretsmanager/secret:Secret"):
        if plan.beside(secret, "aws:secretsmanager/secretRotation:SecretRotation"):
            continue
        yield Finding("aws-secret-rotation", secret.name, "no rotation schedule", exempt=(
            "rotated by a configuration change and `pulumi up`, not by a rotation Lambda: callers' API keys by new "
            "apiKeys ids (the group's instance refresh boots instances that read them), the router's keys by new "
            "caller ids or a replaced key (its task definition pins each secret's version, so the service rolls its "
            "tasks onto the new one), the Hugging Face token on the Hub by its owner"))


# ---------------------------------------------------------------------------------------------------------
# ECS on Fargate (the router, components/aws/router.py)

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
SECRET_REFERENCE = re.compile(r"^arn:aws[\w-]*:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:(secret:|parameter/)")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def _containers(task: Resource) -> list[dict[str, Any]]:
    """A task definition's container definitions (its `containerDefinitions`, a JSON text); a list with the
    text itself when it cannot be read (a secret value makes the whole text secret: the preview shows [secret])."""
    text = task.inputs.get("containerDefinitions")
    try:
        parsed = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        parsed = None
    if not isinstance(parsed, list):
        return [{"name": "?", "environment": [{"name": "containerDefinitions", "value": str(text)}]}]
    return [c for c in parsed if isinstance(c, dict)]


@rule("aws-ecs-read-only-root", "ECS containers run with a read-only root file system (the writable places are "
      "task-scoped volumes).", "medium", "Set readonlyRootFilesystem: true and mount volumes where the process writes.",
      checkov=("CKV_AWS_336",))
def _ecs_read_only(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for task in plan.of(TASK_DEFINITION):
        for c in _containers(task):
            if not truthy(c.get("readonlyRootFilesystem")):
                yield task, f"container {c.get('name')} can write its root file system"


@rule("aws-ecs-non-root", "ECS containers run as a named non-root user; root only in an init container that "
      "holds no capability and finishes before the others start.", "high",
      "Set the container's user to a non-root uid:gid (LiteLLM's non-root image: 65534:65534).")
def _ecs_non_root(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for task in plan.of(TASK_DEFINITION):
        containers = _containers(task)
        awaited = {d.get("containerName") for c in containers for d in c.get("dependsOn") or []
                   if d.get("condition") == "SUCCESS"}
        for c in containers:
            user = str(c.get("user") or "").split(":")[0]
            if user not in ("", "0", "root"):
                continue
            name = c.get("name")
            if (not truthy(c.get("essential", True)) and name in awaited
                    and dig(c, "linuxParameters", "capabilities", "drop") == ["ALL"]):
                yield Finding("aws-ecs-non-root", task.name, f"init container {name} runs as root", exempt=(
                    "it opens the task's volumes for the non-root containers (Fargate creates bind mounts owned by "
                    "root, mode 755: aws/containers-roadmap#938) with no capability at all, and exits before they "
                    "start (dependsOn SUCCESS)"))
            else:
                yield task, f"container {name} runs as {'root' if user else 'the image user (unstated)'}"


@rule("aws-ecs-no-privilege", "ECS containers get no privileges: not privileged, no added Linux capabilities, no "
      "host process namespace.", "high", "Set privileged: false, drop ALL capabilities, add none; leave pidMode unset.",
      checkov=("CKV_AWS_334", "CKV_AWS_335"))
def _ecs_no_privilege(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for task in plan.of(TASK_DEFINITION):
        if task.inputs.get("pidMode") == "host" or task.inputs.get("ipcMode") == "host":
            yield task, "its containers share the host's process or IPC namespace"
        for c in _containers(task):
            added = dig(c, "linuxParameters", "capabilities", "add") or []
            if truthy(c.get("privileged")) or added:
                yield task, f"container {c.get('name')} is privileged or adds capabilities {added}"


@rule("aws-ecs-secrets-by-reference", "ECS containers take secrets by reference only: `secrets[].valueFrom` names a "
      "Secrets Manager secret or SSM parameter, and no plain variable holds a private key.", "critical",
      "Keep the value in Secrets Manager (encrypted with the environment key) and name its ARN in secrets[].valueFrom.")
def _ecs_secrets(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for task in plan.of(TASK_DEFINITION):
        for c in _containers(task):
            for s in c.get("secrets") or []:
                if not SECRET_REFERENCE.match(str(s.get("valueFrom") or "")):
                    yield task, (f"secret {s.get('name')} of container {c.get('name')} is not a Secrets Manager "
                                 "or SSM ARN")
            for e in c.get("environment") or []:
                if PRIVATE_KEY.search(str(e.get("value") or "")):
                    yield task, f"variable {e.get('name')} of container {c.get('name')} holds a private key"


@rule("aws-ecs-separate-roles", "An ECS task's role (what its code may call) is not its execution role (what ECS "
      "needs to start it).", "medium", "Give the task definition a taskRoleArn apart from its executionRoleArn.",
      checkov=("CKV_AWS_249",))
def _ecs_roles(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for task in plan.of(TASK_DEFINITION):
        execution, role = task.inputs.get("executionRoleArn"), task.inputs.get("taskRoleArn")
        if execution and execution == role:
            yield task, "its code runs with the execution role, which reads every secret the task starts with"


@rule("aws-ecs-no-public-ip", "ECS services run in private subnets without public IP addresses.", "high",
      "Set networkConfiguration.assignPublicIp: false and the private subnets.", checkov=("CKV_AWS_333",))
def _ecs_public_ip(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for service in plan.of("aws:ecs/service:Service"):
        if truthy(dig(service.inputs, "networkConfiguration", "assignPublicIp")):
            yield service, "its tasks get public IP addresses"


@rule("aws-ecs-fargate-latest", "Fargate services run the current platform version (LATEST).", "low",
      "Set platformVersion: LATEST (or leave it unset).", checkov=("CKV_AWS_332",))
def _ecs_platform(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for service in plan.of("aws:ecs/service:Service"):
        version = service.inputs.get("platformVersion")
        if service.inputs.get("launchType") == "FARGATE" and version not in (None, "LATEST"):
            yield service, f"pinned to platform version {version}, which stops getting fixes once retired"


@rule("aws-ecs-cluster-observability", "ECS clusters collect Container Insights metrics and log ECS Exec sessions, "
      "encrypted with a customer-managed key.", "low",
      "Set the containerInsights setting to enabled, and configuration.executeCommandConfiguration with the "
      "environment key and a log group.", checkov=("CKV_AWS_65", "CKV_AWS_223", "CKV_AWS_224"))
def _ecs_cluster(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for cluster in plan.of("aws:ecs/cluster:Cluster"):
        settings = {s.get("name"): s.get("value") for s in cluster.inputs.get("settings") or []}
        if settings.get("containerInsights") not in ("enabled", "enhanced"):
            yield cluster, "Container Insights is off"
        exec_config = dig(cluster.inputs, "configuration", "executeCommandConfiguration") or {}
        if not exec_config.get("kmsKeyId") or exec_config.get("logging") != "OVERRIDE" or not truthy(
                dig(exec_config, "logConfiguration", "cloudWatchEncryptionEnabled")):
            yield cluster, "ECS Exec sessions are not logged to an encrypted log group with the environment key"


# ---------------------------------------------------------------------------------------------------------
# What the generic rules read


def _user_data(inputs: dict[str, Any]) -> Any:
    """A launch template's user data, decoded from base64 (what the instance runs); as written if it is not
    base64."""
    script = inputs.get("userData") or ""
    if script:
        try:
            script = base64.b64decode(script).decode("utf-8", "replace")
        except ValueError:
            pass
    return script


def _model_environment(inputs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The environment variables of a SageMaker model's containers (which sagemaker:DescribeModel shows)."""
    for container in [inputs.get("primaryContainer") or {}, *(inputs.get("containers") or [])]:
        yield from (container.get("environment") or {}).items()


def _task_environment(inputs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The plain environment variables of an ECS task definition's containers (which ecs:DescribeTaskDefinition
    shows); `secrets` are ARNs, read by `aws-ecs-secrets-by-reference`."""
    for c in _containers(Resource(TASK_DEFINITION, "", None, inputs)):
        for e in c.get("environment") or []:
            yield str(e.get("name")), e.get("value")


BOOT_SCRIPTS: dict[str, BootScript] = {"aws:ec2/launchTemplate:LaunchTemplate": _user_data}
CONTAINER_ENVIRONMENTS: dict[str, ContainerEnvironment] = {"aws:sagemaker/model:Model": _model_environment,
                                                           TASK_DEFINITION: _task_environment}

SCANNER_NOTES: dict[str, str] = {
    "CKV2_AWS_62": "not adopted: S3 event notifications; nothing consumes the buckets' events (`selfhost stage` "
                   "writes the weights, AWS services the logs)",
    "CKV_AWS_144": "not adopted: S3 cross-region replication; the weights are a copy of the Hub's, staged again "
                   "from it, and the access logs stay in the environment's region",
    "CKV2_AWS_5": "a scanner limit: Checkov's list of resources that attach a security group lacks "
                  "aws_sagemaker_model, whose vpc_config attaches a SageMaker target's group, so it fails those "
                  "groups (and only those: the pools' groups, attached by launch templates, pass)",
}
"""Checkov's checks no rule of ours adopts or the scanner misreads (`Platform.scanner_notes`)."""
