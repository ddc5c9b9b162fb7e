"""The policy rules every plan is checked against: one rule set, two runners. The policy pack (policy/) runs them in
`pulumi preview --policy-pack policy`; `selfhost check` runs them offline on the previewed graph.

A rule is data (id, description, severity, mandatory or advisory, the fix, the Checkov id a security reviewer
knows from Terraform where one exists) and a pure function over the plan's resources in the provider's wire
format. Where the platform makes the rule impossible for a resource, the rule does not skip it silently: it
reports an exemption that says why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .aws.tags import ACCESS_LOGS_PURPOSE
from .catalog.iam import ACTIONS_WITHOUT_RESOURCE_LEVEL, FORBIDDEN_ROLES
from .catalog.sagemaker_instances import INSTANCE_STORAGE_FAMILIES
from .cost import Estimate, Resource, total_text

Severity = Literal["critical", "high", "medium", "low"]
# A token's own shape (Hugging Face `hf_...`, OpenAI-style `sk-...`), or a token variable given a value.
_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{30,}|\bsk-[A-Za-z0-9_-]{20,}|\b(HF_TOKEN|HUGGING_FACE_HUB_TOKEN)=[^\s/]")
OPEN = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Finding:
    rule: str
    resource: str | None
    message: str
    exempt: str | None = None
    """Why the platform makes the rule impossible here: reported, not a violation."""


@dataclass(frozen=True)
class Plan:
    resources: list[Resource]
    estimate: Estimate | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    """The stack outputs (`tier`, the environment's class, among them)."""

    @property
    def production(self) -> bool:
        return self.outputs.get("tier") == "production"

    def of(self, *types: str) -> Iterator[Resource]:
        return (r for r in self.resources if r.type in types)

    def beside(self, r: Resource, token: str) -> list[Resource]:
        """Resources of type `token` in the same component as `r`."""
        return [s for s in self.resources if s.component == r.component and s.type == token]


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    severity: Severity
    mandatory: bool
    fix: str
    check: Callable[[Plan], Iterable[tuple[Resource | None, str] | Finding]]
    checkov: tuple[str, ...] = ()
    """The same rule's ids in Checkov (Terraform and Kubernetes scanners), where it has one."""

    def run(self, plan: Plan) -> list[Finding]:
        out = []
        for item in self.check(plan):
            if isinstance(item, Finding):
                out.append(item)
            else:
                r, message = item
                out.append(Finding(self.id, r.name if r else None, message))
        return out


RULES: list[Rule] = []


def rule(id: str, description: str, severity: Severity, fix: str, *, checkov: tuple[str, ...] = (),
         mandatory: bool = True) -> Callable[[Callable[[Plan], Iterable[Any]]], Callable[[Plan], Iterable[Any]]]:
    def register(check: Callable[[Plan], Iterable[Any]]) -> Callable[[Plan], Iterable[Any]]:
        RULES.append(Rule(id, description, severity, mandatory, fix, check, checkov))
        return check
    return register


def _get(data: Any, *path: str | int) -> Any:
    for part in path:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and len(data) > part else None
        else:
            data = data.get(part) if isinstance(data, dict) else None
    return data


def _truthy(value: Any) -> bool:
    """Booleans as the providers' wire format has them: some are strings ("true", "TRUE")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _doc(value: Any) -> dict[str, Any]:
    if isinstance(value, str) and value.startswith("{"):
        return json.loads(value)
    return value if isinstance(value, dict) else {}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------------------------------------
# Stack-wide


@rule("monthly-budget", "The expected monthly cost of the plan stays within the stack's budget.monthlyUsd.",
      "high", "Raise selfhost-llm:budget.monthlyUsd, or shrink the plan (`selfhost cost <env>` shows where).")
def _budget(plan: Plan) -> Iterator[tuple[None, str]]:
    est = plan.estimate
    if est is not None and est.over_budget:
        low, expected, high = est.total()
        unpriced = est.unpriced_count()
        yield None, (f"expected monthly cost {total_text(expected, unpriced)} (min {total_text(low, unpriced)}, "
                     f"max {total_text(high, unpriced)}) is over the budget ${est.budget_monthly_usd:,.2f} "
                     "(selfhost-llm:budget.monthlyUsd)")


def _gpus_of(endpoint: dict[str, Any]) -> set[str]:
    """The catalog names of the GPUs an endpoint record says it runs on (its kind reads its record)."""
    from .targets.registry import KINDS

    kind = KINDS.get(str(endpoint.get("kind")))
    return kind.gpus(endpoint) if kind else set()


@rule("allowed-gpu-types", "Endpoints run only on the GPU types the environment allows (selfhost-llm:allowedGpus).",
      "medium", "Choose an instance or machine type with an allowed GPU, or add the type to allowedGpus.")
def _allowed_gpus(plan: Plan) -> Iterator[tuple[None, str]]:
    allowed = (plan.outputs.get("policyInputs") or {}).get("allowedGpus")
    if allowed is None:
        return
    for name, endpoint in (plan.outputs.get("endpoints") or {}).items():
        refused = sorted(_gpus_of(endpoint) - set(allowed))
        if refused:
            yield None, f"endpoint {name} runs on {', '.join(refused)}; allowed: {', '.join(allowed) or 'none'}"


REQUIRED_TAGS = ("environment", "owner", "managed-by", "project")


@rule("environment-tags", "Every taggable resource carries the environment, owner, managed-by and project tags "
      "(labels on Google Cloud and Kubernetes).", "low",
      "Declare the resource with the environment's tags (TargetKind.identity_tags).")
def _tags(plan: Plan) -> Iterator[tuple[Resource, str]]:
    from .targets.registry import tag_field

    for r in plan.resources:
        path = tag_field(r.type)  # the resource's platform knows where its tags go
        if path is None:
            continue
        tags = _get(r.inputs, *path) or {}
        if isinstance(tags, list):  # an Auto Scaling group's tags: [{key, value, propagateAtLaunch}]
            tags = {t.get("key"): t.get("value") for t in tags if isinstance(t, dict)}
        missing = [t for t in REQUIRED_TAGS if t not in tags]
        if missing:
            yield r, f"{path[-1]} lack {', '.join(missing)}"


# ---------------------------------------------------------------------------------------------------------
# AWS


@rule("aws-s3-kms", "Buckets are encrypted by default with a customer-managed KMS key.", "high",
      "Give the bucket a server-side encryption configuration with sseAlgorithm aws:kms and the environment key.",
      checkov=("CKV_AWS_145",))
def _s3_kms(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for bucket in plan.of("aws:s3/bucket:Bucket"):
        configs = plan.beside(bucket, "aws:s3/bucketServerSideEncryptionConfiguration:"
                                      "BucketServerSideEncryptionConfiguration")
        default = _get(configs[0].inputs, "rules", 0, "applyServerSideEncryptionByDefault") if configs else None
        if _access_logs(bucket) and default and default.get("sseAlgorithm") == "AES256":
            yield Finding("aws-s3-kms", bucket.name, "encrypted with S3-managed keys", exempt=(
                "S3 server access logging delivers only to buckets whose default encryption is SSE-S3, not a KMS key "
                "(S3 user guide, server access logging)"))
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
        if not any(_get(r, "abortIncompleteMultipartUpload", "daysAfterInitiation") and r.get("status") == "Enabled"
                   for r in rules):
            yield bucket, "incomplete multipart uploads are kept (and billed) forever"


@rule("aws-s3-public-access-block", "Buckets block every form of public access.", "critical",
      "Add a BucketPublicAccessBlock with all four settings true.",
      checkov=("CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"))
def _s3_public(plan: Plan) -> Iterator[tuple[Resource, str]]:
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in plan.of("aws:s3/bucket:Bucket"):
        blocks = plan.beside(bucket, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        off = [k for k in keys if not blocks or not _truthy(blocks[0].inputs.get(k))]
        if off:
            yield bucket, f"public access not blocked: {', '.join(off)}"


@rule("aws-s3-versioning", "Buckets keep object versions (weights and captured data survive an overwrite).",
      "medium", "Add a BucketVersioning with status Enabled.", checkov=("CKV_AWS_21",))
def _s3_versioning(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for bucket in plan.of("aws:s3/bucket:Bucket"):
        versioning = plan.beside(bucket, "aws:s3/bucketVersioning:BucketVersioning")
        if not versioning or _get(versioning[0].inputs, "versioningConfiguration", "status") != "Enabled":
            yield bucket, "versioning is not enabled"


@rule("aws-s3-tls-only", "Bucket policies refuse requests that do not use TLS.", "medium",
      "Add a bucket policy statement denying s3:* when aws:SecureTransport is false.")
def _s3_tls(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for bucket in plan.of("aws:s3/bucket:Bucket"):
        policies = [_doc(p.inputs.get("policy")) for p in plan.beside(bucket, "aws:s3/bucketPolicy:BucketPolicy")]
        if not any(st.get("Effect") == "Deny" and "aws:SecureTransport" in json.dumps(st.get("Condition", {}))
                   for doc in policies for st in doc.get("Statement", [])):
            yield bucket, "no statement denies requests without TLS"


@rule("aws-kms-rotation", "Customer-managed KMS keys rotate yearly.", "medium", "Set enableKeyRotation: true.",
      checkov=("CKV_AWS_7",))
def _kms_rotation(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for key in plan.of("aws:kms/key:Key"):
        if not _truthy(key.inputs.get("enableKeyRotation")):
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
def _log_retention_production(plan: Plan) -> Iterator[tuple[Resource, str]]:
    if not plan.production:
        return
    for group in plan.of("aws:cloudwatch/logGroup:LogGroup"):
        if int(group.inputs.get("retentionInDays") or 0) < 365:
            yield group, f"keeps logs {group.inputs.get('retentionInDays')} days in a production environment"


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
        if not _truthy(_get(repo.inputs, "imageScanningConfiguration", "scanOnPush")):
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
        config = _get(repo.inputs, "encryptionConfigurations", 0) or {}
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
            if _truthy(nic.get("associatePublicIpAddress")) or "associatePublicIpAddress" not in nic:
                yield template, "its instances may get a public IP address"
    for subnet in plan.of("aws:ec2/subnet:Subnet"):
        if _truthy(subnet.inputs.get("mapPublicIpOnLaunch")):
            yield subnet, "gives every instance launched in it a public IP address"


@rule("aws-ebs-encrypted", "Instance volumes are encrypted with a customer-managed KMS key.", "high",
      "Set encrypted: true and kmsKeyId on every blockDeviceMappings entry.", checkov=("CKV_AWS_8",))
def _ebs(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for template in plan.of("aws:ec2/launchTemplate:LaunchTemplate"):
        for mapping in template.inputs.get("blockDeviceMappings") or []:
            ebs = mapping.get("ebs") or {}
            if ebs and (not _truthy(ebs.get("encrypted")) or not ebs.get("kmsKeyId")):
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
        if not _get(model.inputs, "vpcConfig", "subnets"):
            yield model, "not attached to the VPC"


@rule("aws-sagemaker-network-isolation", "A SageMaker model whose weights come from S3 runs with network "
      "isolation: the container reaches nothing.", "high", "Set enableNetworkIsolation: true (models[].source: s3).")
def _sagemaker_isolation(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for model in plan.of("aws:sagemaker/model:Model"):
        from_s3 = bool(_get(model.inputs, "primaryContainer", "modelDataSource") or
                       _get(model.inputs, "primaryContainer", "modelDataUrl"))
        if from_s3 and not _truthy(model.inputs.get("enableNetworkIsolation")):
            yield model, "weights come from S3 but the container may reach the network"


@rule("aws-iam-no-wildcard-actions", "IAM policies name their actions: no wildcards.", "critical",
      "List the exact actions the role needs.")
def _iam_actions(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r in plan.of("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        for st in _doc(r.inputs.get("policy")).get("Statement", []):
            wild = [a for a in _listed(st.get("Action")) if st.get("Effect") == "Allow" and a and "*" in a]
            if wild:
                yield r, f"wildcard action {wild[0]}"


@rule("aws-iam-scoped-resources", "IAM policies grant on named resources; '*' only for actions AWS authorizes on "
      "nothing narrower (the Service Authorization Reference lists no resource type for them).", "high",
      "Name the resources' ARNs; see components/catalog/iam.py for the actions that take only '*'.",
      checkov=("CKV_AWS_355",))
def _iam_resources(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r in plan.of("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        for st in _doc(r.inputs.get("policy")).get("Statement", []):
            actions = set(_listed(st.get("Action")))
            if st.get("Effect") == "Allow" and "*" in _listed(st.get("Resource")) and not actions <= \
                    ACTIONS_WITHOUT_RESOURCE_LEVEL:
                yield r, (f"Resource '*' for {sorted(actions - ACTIONS_WITHOUT_RESOURCE_LEVEL)}, which AWS can scope "
                          "to named resources")


@rule("aws-lb-internal", "Load balancers in front of models are internal: reachable from the VPC only.", "high",
      "Set internal: true (front a public entry point with an API gateway that authenticates).")
def _lb_internal(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for lb in plan.of("aws:lb/loadBalancer:LoadBalancer"):
        if not _truthy(lb.inputs.get("internal")):
            yield lb, "faces the internet"


@rule("secrets-not-in-user-data", "No token or key in plain text in instance user data or startup scripts: they "
      "fetch secrets at boot with the instance's identity.", "critical",
      "Read the secret at boot (Secrets Manager, Secret Manager) into a file the container mounts.",
      checkov=("CKV_AWS_46",))
def _user_data(plan: Plan) -> Iterator[tuple[Resource, str]]:
    import base64

    for r in plan.of("aws:ec2/launchTemplate:LaunchTemplate", "gcp:compute/instanceTemplate:InstanceTemplate"):
        script = r.inputs.get("userData") or _get(r.inputs, "metadata", "startup-script") or ""
        if r.type.startswith("aws:") and script:
            try:
                script = base64.b64decode(script).decode("utf-8", "replace")
            except ValueError:
                pass
        if script == "[secret]" or _TOKEN.search(script):
            yield r, "its boot script carries a secret value"


TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "OPENAI_API_KEY", "API_KEY")


@rule("secrets-not-in-container-env", "No token or key in a serving container's environment, where anyone allowed "
      "to describe the model reads it (sagemaker:DescribeModel).", "critical",
      "Stage the weights in the bucket (models[].source: s3: `pulumi up` copies them, and the endpoint then runs "
      "with network isolation and no token), or serve our image, which reads the token from a mounted file.")
def _container_env(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for model in plan.of("aws:sagemaker/model:Model"):
        containers = [model.inputs.get("primaryContainer") or {}, *(model.inputs.get("containers") or [])]
        for container in containers:
            for name, value in (container.get("environment") or {}).items():
                if name in TOKEN_VARIABLES or value == "[secret]" or _TOKEN.search(str(value)):
                    yield model, f"container environment variable {name} holds a secret"


@rule("secrets-not-in-outputs", "No token or key in a stack output in plain text: outputs are shown to everyone who "
      "can read the stack.", "critical", "Export it with pulumi.Output.secret (or not at all).")
def _outputs(plan: Plan) -> Iterator[tuple[None, str]]:
    def walk(value: Any, path: str) -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, f"{path}.{k}" if path else k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from walk(v, f"{path}[{i}]")
        elif isinstance(value, str) and _TOKEN.search(value):
            yield path
    for path in walk(plan.outputs, ""):
        yield None, f"output {path} holds a token in plain text"


# ---------------------------------------------------------------------------------------------------------
# Google Cloud


@rule("gcp-no-basic-roles", "No basic roles (owner, editor, viewer) and no identity administration are granted.",
      "critical", "Grant the predefined role that covers the need, on the one resource it concerns.")
def _basic_roles(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r in plan.resources:
        if r.type.startswith("gcp:") and "iAM" in r.type and r.inputs.get("role") in FORBIDDEN_ROLES:
            yield r, f"grants {r.inputs['role']}"


@rule("gcp-bigquery-cmek", "BigQuery datasets (logged prompts and responses) are encrypted with the environment's "
      "Cloud KMS key.", "high", "Set defaultEncryptionConfiguration.kmsKeyName to the environment key.",
      checkov=("CKV_GCP_81",))
def _bigquery_cmek(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for dataset in plan.of("gcp:bigquery/dataset:Dataset"):
        if not _get(dataset.inputs, "defaultEncryptionConfiguration", "kmsKeyName"):
            yield dataset, "encrypted with a Google-managed key only"


@rule("gcp-secret-cmek", "Secret Manager secrets are encrypted with the environment's Cloud KMS key in every "
      "replica.", "high", "Use user-managed replication with customerManagedEncryption.kmsKeyName on each replica.")
def _secret_cmek(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for secret in plan.of("gcp:secretmanager/secret:Secret"):
        replicas = _get(secret.inputs, "replication", "userManaged", "replicas") or [{}]
        if not all(_get(r, "customerManagedEncryption", "kmsKeyName") for r in replicas):
            yield secret, "a replica is encrypted with a Google-managed key only"


@rule("gcp-artifact-registry-cmek", "Image repositories are encrypted with the environment's Cloud KMS key.",
      "medium", "Set the repository's kmsKeyName.", checkov=("CKV_GCP_84",))
def _registry_cmek(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for repo in plan.of("gcp:artifactregistry/repository:Repository"):
        if not repo.inputs.get("kmsKeyName"):
            yield repo, "encrypted with a Google-managed key only"


@rule("gcp-kms-rotation", "Cloud KMS keys rotate at least every 90 days.", "medium",
      "Set rotationPeriod to 7776000s or less.", checkov=("CKV_GCP_43",))
def _gcp_rotation(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for key in plan.of("gcp:kms/cryptoKey:CryptoKey"):
        period = str(key.inputs.get("rotationPeriod") or "")
        if not period.endswith("s") or float(period[:-1]) > 90 * 86_400:
            yield key, f"rotation period {period or 'unset'}"


@rule("gcp-no-external-ip", "Serving VMs get no external IP address.", "high",
      "Leave accessConfigs out of the template's network interfaces; reach the Hub through Cloud NAT.",
      checkov=("CKV_GCP_40",))
def _gcp_external_ip(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for template in plan.of("gcp:compute/instanceTemplate:InstanceTemplate"):
        if any(nic.get("accessConfigs") for nic in template.inputs.get("networkInterfaces") or []):
            yield template, "its VMs get an external IP address"


@rule("gcp-shielded-vm", "VMs boot as Shielded VMs with vTPM and integrity monitoring.", "medium",
      "Set shieldedInstanceConfig.enableVtpm and enableIntegrityMonitoring.", checkov=("CKV_GCP_39",))
def _shielded(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for template in plan.of("gcp:compute/instanceTemplate:InstanceTemplate"):
        config = template.inputs.get("shieldedInstanceConfig") or {}
        if not (_truthy(config.get("enableVtpm")) and _truthy(config.get("enableIntegrityMonitoring"))):
            yield template, "not a Shielded VM with vTPM and integrity monitoring"


@rule("gcp-os-login", "VMs use OS Login and refuse project-wide SSH keys.", "high",
      "Set metadata enable-oslogin and block-project-ssh-keys to TRUE.", checkov=("CKV_GCP_32", "CKV_GCP_34"))
def _os_login(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for template in plan.of("gcp:compute/instanceTemplate:InstanceTemplate"):
        meta = template.inputs.get("metadata") or {}
        for key in ("enable-oslogin", "block-project-ssh-keys"):
            if not _truthy(meta.get(key)):
                yield template, f"metadata {key} is not TRUE"


@rule("gcp-subnet-private-and-logged", "Subnets reach Google APIs privately and log their flows.", "medium",
      "Set privateIpGoogleAccess: true and a logConfig.", checkov=("CKV_GCP_26", "CKV_GCP_74"))
def _gcp_subnet(plan: Plan) -> Iterator[tuple[Resource, str] | Finding]:
    for subnet in plan.of("gcp:compute/subnetwork:Subnetwork"):
        if subnet.inputs.get("purpose") in ("REGIONAL_MANAGED_PROXY", "GLOBAL_MANAGED_PROXY"):
            yield Finding("gcp-subnet-private-and-logged", subnet.name, "no flow logs, no Private Google Access",
                          exempt="a proxy-only subnet carries no VMs: Google Cloud accepts neither setting on it")
            continue
        if not _truthy(subnet.inputs.get("privateIpGoogleAccess")):
            yield subnet, "no Private Google Access"
        if not subnet.inputs.get("logConfig"):
            yield subnet, "no flow logs"


@rule("gcp-no-open-ingress", "No firewall rule admits the internet (0.0.0.0/0), and none opens port 22.",
      "critical", "Admit only Google's health-check and proxy ranges or the VPC; use IAP or OS Login for access.",
      checkov=("CKV_GCP_2", "CKV_GCP_106"))
def _gcp_ingress(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for fw in plan.of("gcp:compute/firewall:Firewall"):
        if fw.inputs.get("direction", "INGRESS") != "INGRESS" or not fw.inputs.get("allows"):
            continue
        if set(OPEN) & set(fw.inputs.get("sourceRanges") or []):
            yield fw, "admits the internet"
        for allow in fw.inputs.get("allows") or []:
            all_ports = allow.get("protocol") in ("tcp", "all") and not allow.get("ports")
            if "22" in (allow.get("ports") or []) or all_ports:
                yield fw, "opens port 22"


# ---------------------------------------------------------------------------------------------------------
# Kubernetes: the pod templates of workloads (Deployments here)


def _pods(plan: Plan) -> Iterator[tuple[Resource, dict[str, Any]]]:
    for r in plan.of("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet",
                     "kubernetes:apps/v1:DaemonSet"):
        yield r, _get(r.inputs, "spec", "template", "spec") or {}


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def _context(pod: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A security setting of the container, or of the pod where the container leaves it to the pod."""
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (pod.get("securityContext") or {}).get(key)


@rule("k8s-non-root", "Containers run as a non-root user.", "high",
      "Set runAsNonRoot: true and a non-zero runAsUser (our images run as 10001).", checkov=("CKV_K8S_23",))
def _k8s_root(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            if not _truthy(_context(pod, c, "runAsNonRoot")) or _context(pod, c, "runAsUser") == 0:
                yield r, f"container {c.get('name')} may run as root"


@rule("k8s-read-only-root", "Containers have a read-only root file system; caches go to volumes.", "medium",
      "Set readOnlyRootFilesystem: true and mount emptyDir or PVC volumes where the program writes.",
      checkov=("CKV_K8S_22",))
def _k8s_ro(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            if not _truthy((c.get("securityContext") or {}).get("readOnlyRootFilesystem")):
                yield r, f"container {c.get('name')} can write its root file system"


@rule("k8s-no-privilege-escalation", "Containers cannot gain privileges, and none is privileged.", "high",
      "Set allowPrivilegeEscalation: false and leave privileged unset.", checkov=("CKV_K8S_20", "CKV_K8S_16"))
def _k8s_escalation(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            sc = c.get("securityContext") or {}
            if sc.get("allowPrivilegeEscalation") is not False or _truthy(sc.get("privileged")):
                yield r, f"container {c.get('name')} may escalate privileges"


@rule("k8s-drop-capabilities", "Containers drop every Linux capability.", "medium",
      "Set capabilities.drop: [ALL] and add none back.", checkov=("CKV_K8S_37", "CKV_K8S_28"))
def _k8s_caps(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            caps = (c.get("securityContext") or {}).get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
                yield r, f"container {c.get('name')} keeps Linux capabilities"


@rule("k8s-seccomp", "Pods run under the runtime's default seccomp profile.", "medium",
      "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.", checkov=("CKV_K8S_31",))
def _k8s_seccomp(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            profile = _context(pod, c, "seccompProfile") or {}
            if profile.get("type") not in ("RuntimeDefault", "Localhost"):
                yield r, f"container {c.get('name')} runs without a seccomp profile"


@rule("k8s-requests-and-limits", "Containers set CPU and memory requests and limits.", "medium",
      "Set resources.requests and resources.limits for cpu and memory.",
      checkov=("CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13"))
def _k8s_resources(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            res = c.get("resources") or {}
            missing = [f"{kind}.{what}" for kind in ("requests", "limits") for what in ("cpu", "memory")
                       if what not in (res.get(kind) or {})]
            if missing:
                yield r, f"container {c.get('name')} lacks {', '.join(missing)}"


@rule("k8s-probes", "Serving containers have startup, readiness and liveness probes.", "medium",
      "Add the probes (the adapter: startup and readiness on /health, liveness on /livez).",
      checkov=("CKV_K8S_8", "CKV_K8S_9"))
def _k8s_probes(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in pod.get("containers") or []:
            missing = [p for p in ("startupProbe", "readinessProbe", "livenessProbe") if not c.get(p)]
            if missing:
                yield r, f"container {c.get('name')} has no {', '.join(missing)}"


@rule("k8s-no-default-namespace", "Objects live in a namespace of their own, never `default`.", "medium",
      "Set metadata.namespace (each target gets <environment>-<name>).", checkov=("CKV_K8S_21",))
def _k8s_namespace(plan: Plan) -> Iterator[tuple[Resource, str]]:
    cluster_scoped = ("kubernetes:core/v1:Namespace", "kubernetes:helm.sh/v3:Release")
    for r in plan.resources:
        if r.type.startswith("kubernetes:") and r.type not in cluster_scoped:
            if _get(r.inputs, "metadata", "namespace") in (None, "", "default"):
                yield r, "in the default namespace"


@rule("k8s-service-account", "Pods run under their own service account, with no API token mounted.", "medium",
      "Set serviceAccountName to a dedicated account and automountServiceAccountToken: false.",
      checkov=("CKV_K8S_38", "CKV_K8S_41"))
def _k8s_sa(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        if pod.get("serviceAccountName") in (None, "", "default"):
            yield r, "runs under the default service account"
        if pod.get("automountServiceAccountToken") is not False:
            yield r, "mounts a service account token"


@rule("k8s-secrets-as-files", "Secrets reach containers as mounted files, never environment variables.", "high",
      "Mount the Secret as a volume and point the program at the file (HF_TOKEN_PATH, --api-keys-file).",
      checkov=("CKV_K8S_35",))
def _k8s_secret_env(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            for var in c.get("env") or []:
                if _get(var, "valueFrom", "secretKeyRef") or var.get("name") in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
                    yield r, f"container {c.get('name')} takes {var.get('name')} from a secret as a variable"
            if any(_get(source, "secretRef") for source in c.get("envFrom") or []):
                yield r, f"container {c.get('name')} takes a whole Secret as variables"


@rule("k8s-network-policy", "Every namespace with workloads denies all traffic by default; allow rules open what "
      "serving needs.", "high", "Add a NetworkPolicy with an empty podSelector and both policy types, no rules.")
def _k8s_netpol(plan: Plan) -> Iterator[tuple[Resource, str]]:
    deny = {_get(p.inputs, "metadata", "namespace") for p in plan.of("kubernetes:networking.k8s.io/v1:NetworkPolicy")
            if _get(p.inputs, "spec", "podSelector") == {} and not _get(p.inputs, "spec", "ingress")
            and not _get(p.inputs, "spec", "egress")
            and set(_get(p.inputs, "spec", "policyTypes") or []) == {"Ingress", "Egress"}}
    for r, _ in _pods(plan):
        if _get(r.inputs, "metadata", "namespace") not in deny:
            yield r, "its namespace has no default-deny NetworkPolicy"


@rule("k8s-image-digest", "Images are pinned by digest, so a node pulls exactly what was built.", "low",
      "Set the target's imageDigest, or the router's image as name@sha256:... (our tags are content hashes, but a "
      "registry may let them move).",
      checkov=("CKV_K8S_43",), mandatory=False)
def _k8s_digest(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r, pod in _pods(plan):
        for c in _containers(pod):
            if "@sha256:" not in str(c.get("image", "")):
                yield r, f"container {c.get('name')} image {c.get('image')} is pinned by tag, not digest"


# ---------------------------------------------------------------------------------------------------------
# Hugging Face


@rule("hf-endpoint-not-public", "Hugging Face Inference Endpoints require a token (authenticated) or PrivateLink "
      "(private); none answers the whole internet unauthenticated.", "critical",
      "Set the target's endpointType to authenticated or private (public needs allowPublic: true in the config "
      "and an exemption here).")
def _hf_not_public(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r in plan.of("pulumi-python:dynamic/hf:InferenceEndpoint"):
        if r.inputs.get("type") not in ("authenticated", "private"):
            yield r, f"endpoint type {r.inputs.get('type')!r}: anyone who finds the URL can run the model"


# ---------------------------------------------------------------------------------------------------------
# Running them


@dataclass
class Report:
    violations: list[Finding] = field(default_factory=list)
    advisories: list[Finding] = field(default_factory=list)
    exemptions: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations


BY_ID = {r.id: r for r in RULES}
assert len(BY_ID) == len(RULES), "two rules share an id"


def check(resources: list[Resource], estimate: Estimate | None, outputs: dict[str, Any] | None = None) -> Report:
    """Every rule on the plan: mandatory violations, advisory ones, and the exemptions the platforms force."""
    plan, report = Plan(resources, estimate, outputs or {}), Report()
    for r in RULES:
        for finding in r.run(plan):
            if finding.exempt:
                report.exemptions.append(finding)
            elif r.mandatory:
                report.violations.append(finding)
            else:
                report.advisories.append(finding)
    return report
