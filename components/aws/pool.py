"""A pool of GPU instances on EC2 serving our image (the adapter in front of vLLM) behind an internal ALB."""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ..catalog.ec2_instances import Ec2GpuInstance
from ..catalog.models import ModelFacts
from ..schema import ModelSpec
from ..serving_image import PORT, boot_script, weights_on_disk
from ..sizing import weights_bytes
from ..tls import PrivateCa, PrivateCaArgs
from ..weights import Location
from .foundation import AwsFoundation
from .iam import owned_reads, read_statements

# The AWS Deep Learning Base GPU AMI (NVIDIA driver, Docker and the NVIDIA container toolkit, the AWS CLI), by
# its public SSM parameter (AWS DLAMI developer guide, "find-dlami-id"). It mounts local NVMe at /opt/dlami/nvme.
AMI_PARAMETER = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
NVME_MOUNT = "/opt/dlami/nvme"
ROOT_VOLUME_GIB = 100
# Our adapter's readiness route: 200 once the engine has loaded the model.
HEALTH_PATH = "/health"
SSM_MANAGED_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
# TLS 1.2 and 1.3 only (Elastic Load Balancing, "Security policies for your Application Load Balancer").
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
LISTEN_PORT = 443
# Where the load balancers of a stack write their access logs in its access-log bucket (storage.ALB_LOGS_PREFIX).
ALB_LOGS_PREFIX = "alb"
def sync_prefix(region: str) -> Callable[[Location, str], str]:
    """The boot command copying an s3:// prefix into a folder of the instance: the DLAMI's AWS CLI with the
    instance role, listing with the prefix the role may list (iam.read_statements)."""
    return lambda location, folder: (
        f"aws s3 sync --only-show-errors --region {region} "
        f"{shlex.quote(f's3://{location.bucket}/{location.object_prefix}')} {shlex.quote(folder)}")


@dataclass(frozen=True)
class GroupScaling:
    """The Auto Scaling group's bounds, and its target tracking on requests per instance."""

    min_replicas: int
    max_replicas: int
    requests_per_instance_per_minute: int
    """The goal: ALBRequestCountPerTarget."""


@dataclass(frozen=True)
class GpuInstancePoolArgs:
    pool_name: str
    """Names the ALB, target group and log group (at most 32 characters for the ALB)."""
    foundation: AwsFoundation
    model: ModelSpec
    facts: ModelFacts
    instances: list[Ec2GpuInstance]
    """The pool's instance types, preferred first (from the catalog)."""
    startup_timeout_seconds: int
    hf_token_secret_arn: pulumi.Input[str] | None
    tags: dict[str, str]
    scaling: GroupScaling
    on_demand_base: int
    """Instances that are always on demand; of those above it, `spot_share` are spot."""
    spot_share: float
    warm_pool: bool
    """Stopped instances kept ready to start instead of a mixed instances policy (on demand, one type only)."""
    certificate_arn: str | None
    """An ACM certificate for the load balancer's HTTPS listener; None: the stack's private CA issues one for the
    load balancer's DNS name, imported into ACM (callers trust `ca_certificate_pem`)."""
    api_keys: tuple[str, ...]
    """The callers' key ids: one generated key each, in one Secrets Manager secret the instances read at boot."""
    deletion_protection: bool
    """The load balancer's deletion protection (the production tier)."""
    access_log_bucket: pulumi.Input[str]
    """The stack's access-log bucket (SSE-S3, with the ELB log delivery policy): the load balancer's access logs."""
    idle_timeout_seconds: int
    """Longer than the longest gap between two streamed tokens (a long prefill), or streams are cut."""
    deregistration_delay_seconds: int
    """How long a leaving instance (spot interruption, scale-in) keeps its open streams."""
    log_retention_days: int = 30


def cache_volume_gib(facts: ModelFacts, quantization: str) -> int:
    """EBS model cache for types without local NVMe: twice the weights (a download beside the old copy during
    a revision change) plus 20 GiB for the engine's compile caches."""
    return int(2 * weights_bytes(facts, quantization) / 2**30) + 20


def _get_secret(region: str, arn: str, version: str | None = None) -> str:
    pinned = f" --version-id {shlex.quote(version)}" if version else ""
    return (f"aws secretsmanager get-secret-value --region {region} --secret-id {shlex.quote(arn)}{pinned} "
            "--query SecretString --output text")


def user_data(image: str, region: str, model: ModelSpec, gpus: int, log_group: str, secret_arn: str | None,
              cache_dir: str, mount_cache: bool, keys_secret_arn: str | None = None,
              keys_version: str | None = None) -> str:
    """The boot script (serving_image.boot_script) with the instance role: the token and the callers' keys from
    Secrets Manager, the team's own S3 weights onto the instance's disk (WeightsOnDisk), our image from ECR, logs
    to CloudWatch, and the instance's own certificate for the load balancer's HTTPS to it. The keys are read at
    `keys_version`: new keys make a new launch template version, which the group's instance refresh rolls out."""
    # The team's own S3 weights under the cache (local NVMe or the cache volume), after it is mounted.
    on_disk = weights_on_disk(model, "s3", f"{cache_dir}/weights", sync_prefix(region))
    return boot_script(
        image, model, gpus, cache_dir, on_disk=on_disk,
        prepare=[*([f"mkfs -t xfs /dev/nvme1n1 && mkdir -p {cache_dir} && mount /dev/nvme1n1 {cache_dir}"]
                   if mount_cache else []), f"mkdir -p {cache_dir}/hf && chmod 700 {cache_dir}/hf"],
        fetch_token=None if secret_arn is None else _get_secret(region, secret_arn),
        fetch_keys=None if keys_secret_arn is None else _get_secret(region, keys_secret_arn, keys_version), tls=True,
        login=f"aws ecr get-login-password --region {region} | docker login --username AWS --password-stdin "
              f"{image.split('/')[0]}",
        log_options=["--log-driver awslogs", f"--log-opt awslogs-region={region}",
                     f"--log-opt awslogs-group={log_group}",
                     "--log-opt awslogs-stream=$(cat /var/lib/cloud/data/instance-id)"])


def keys_file(ids: list[str], values: list[str]) -> str:
    """The adapter's `--api-keys-file`: one `<id>:<key>` line per caller (as Kubernetes targets write it)."""
    return "".join(f"{key}:{value}\n" for key, value in zip(ids, values, strict=True))


class GpuInstancePool(pulumi.ComponentResource):
    """GPU instances of one memory class, mostly spot, serving our image behind an internal load balancer that
    takes HTTPS only (TLS 1.2+, the given certificate or one from the stack's private CA), logs every request and
    speaks HTTPS to the instances (each makes its own certificate at boot), and the callers' API keys.

    Launch template (the DLAMI pinned by id, IMDSv2 with hop limit 1, encrypted volumes, no public IP, an instance
    profile scoped to its repository, secret and log group, reachable by SSM Session Manager, no SSH), an Auto
    Scaling group over the private subnets (on-demand base, spot above it over every listed type, capacity
    rebalancing, instance refresh with rollback), an internal ALB whose health check is the adapter's readiness,
    and target tracking on requests per target.
    """

    def __init__(self, name: str, args: GpuInstancePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:GpuInstancePool", name, None, opts)
        base = args.foundation
        assert base.own_image is not None  # a pool always serves our image: its platform needs include it
        # Resolved at deploy time and pinned: instance-refresh rollback does not work with an SSM-parameter image
        # id or $Latest (Auto Scaling API, RefreshPreferences).
        ami = aws.ssm.get_parameter_output(name=AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self))

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/selfhost/{args.pool_name}", retention_in_days=args.log_retention_days,
            kms_key_id=base.kms_key_arn, tags=args.tags, opts=pulumi.ResourceOptions(parent=self))
        self.keys_secret, self.keys_version, self.api_keys = self._api_keys(name, args)
        self.role, profile = self._instance_role(name, args, base.own_image.repository_arn)
        self.lb_sg, self.instance_sg = self._security_groups(name, args, LISTEN_PORT)
        self.launch_template = self._launch_template(name, args, ami.value, base.own_image.ref, profile)
        self.ca_certificate_pem: pulumi.Output[str] | None = None
        self.target_group, self.load_balancer = self._load_balancer(name, args, LISTEN_PORT)
        self.group = self._group(name, args)

        self.openai_base_url = pulumi.Output.concat("https://", self.load_balancer.dns_name, "/v1")
        self.invoke_url = pulumi.Output.concat(self.openai_base_url, "/chat/completions")
        self.image = base.own_image.ref
        self.register_outputs({"openaiBaseUrl": self.openai_base_url, "poolName": self.group.name,
                               "loadBalancerDns": self.load_balancer.dns_name})

    def _api_keys(self, name: str, args: GpuInstancePoolArgs) -> tuple[
            aws.secretsmanager.Secret, aws.secretsmanager.SecretVersion, pulumi.Output[dict[str, str]]]:
        """One generated key per caller id, all in one secret (the environment key) the instances read at boot:
        rotating is a config change (new ids) and the group's instance refresh."""
        child = pulumi.ResourceOptions(parent=self)
        ids = list(args.api_keys)
        keys = {key: random.RandomPassword(f"{name}-key-{key}", length=48, special=False, opts=child).result
                for key in ids}
        lines: pulumi.Output[str] = pulumi.Output.all(*keys.values()).apply(lambda values: keys_file(ids, values))
        keys_secret: pulumi.Output[str] = pulumi.Output.secret(lines)
        secret = aws.secretsmanager.Secret(
            f"{name}-api-keys", description=f"{args.pool_name}: the callers' API keys (<id>:<key> lines)",
            kms_key_id=args.foundation.kms_key_arn, recovery_window_in_days=7, tags=args.tags, opts=child)
        version = aws.secretsmanager.SecretVersion(f"{name}-api-keys-version", secret_id=secret.id,
                                                   secret_string=keys_secret, opts=child)
        return secret, version, pulumi.Output.secret(pulumi.Output.all(**keys))

    def _instance_role(self, name: str, args: GpuInstancePoolArgs,
                       repository_arn: pulumi.Input[str]) -> tuple[aws.iam.Role, aws.iam.InstanceProfile]:
        """The instances' role and profile: pull our image, write their own logs, read the token and exactly the
        S3 prefixes of the team's weights they serve; Session Manager instead of SSH."""
        child = pulumi.ResourceOptions(parent=self)
        base, tags = args.foundation, args.tags
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            tags=tags, opts=child)
        statements: list[dict[str, object]] = [
            {"Sid": "PullOurImage", "Effect": "Allow",
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
             "Resource": repository_arn},
            # AWS authorizes a registry login against "*" only.
            {"Sid": "LogInToEcr", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": pulumi.Output.concat(self.log_group.arn, ":*")},
            # The repository and the secret are encrypted with the environment key.
            {"Sid": "DecryptWithEnvironmentKey", "Effect": "Allow", "Action": "kms:Decrypt",
             "Resource": base.kms_key_arn},
        ]
        model = args.model
        statements += read_statements(owned_reads([model.location, *(a.location for a in model.adapters)]))
        if args.hf_token_secret_arn is not None:
            statements.append({"Sid": "ReadHfToken", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                               "Resource": args.hf_token_secret_arn})
        statements.append({"Sid": "ReadApiKeys", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                           "Resource": self.keys_secret.arn})
        aws.iam.RolePolicy(f"{name}-policy", role=role.id,
                           policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
                           opts=child)
        # Session Manager instead of SSH (AWS's managed policy for the SSM agent).
        aws.iam.RolePolicyAttachment(f"{name}-ssm", role=role.name, policy_arn=SSM_MANAGED_POLICY, opts=child)
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, tags=tags, opts=child)
        return role, profile

    def _security_groups(self, name: str, args: GpuInstancePoolArgs,
                         listen_port: int) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
        """The load balancer's (clients in the VPC in, the instances out) and the instances' (the load balancer
        in, HTTPS out)."""
        child = pulumi.ResourceOptions(parent=self)
        base, tags = args.foundation, args.tags
        lb_sg = aws.ec2.SecurityGroup(
            f"{name}-lb-sg", vpc_id=base.vpc_id, description=f"{args.pool_name} load balancer: from the VPC only",
            ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=listen_port, to_port=listen_port,
                                                      cidr_blocks=[base.vpc_cidr], description="clients in the VPC")],
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=PORT, to_port=PORT,
                                                    cidr_blocks=[base.vpc_cidr], description="the pool's instances")],
            tags={**tags, "Name": f"{name}-lb-sg"}, opts=child)
        instance_sg = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=base.vpc_id, description=f"{args.pool_name} instances: from the load balancer only",
            ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=PORT, to_port=PORT,
                                                      security_groups=[lb_sg.id], description="the ALB")],
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                    cidr_blocks=["0.0.0.0/0"],
                                                    description="AWS APIs and the Hugging Face Hub, over HTTPS")],
            tags={**tags, "Name": f"{name}-sg"}, opts=child)
        return lb_sg, instance_sg

    def _launch_template(self, name: str, args: GpuInstancePoolArgs, ami_id: pulumi.Input[str],
                         image: pulumi.Input[str], profile: aws.iam.InstanceProfile) -> aws.ec2.LaunchTemplate:
        """The DLAMI pinned by id, IMDSv2 with hop limit 1, encrypted volumes (a model cache where the type has no
        local NVMe), no public IP, and the boot script that runs our image."""
        base, model, tags = args.foundation, args.model, args.tags
        first = args.instances[0]
        nvme = all(i.has_instance_storage for i in args.instances)
        cache_dir = NVME_MOUNT if nvme else "/var/lib/selfhost"
        volumes = [aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name="/dev/sda1", ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                volume_size=ROOT_VOLUME_GIB, volume_type="gp3", encrypted="true", kms_key_id=base.kms_key_arn,
                delete_on_termination="true"))]
        if not nvme:
            volumes.append(aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/sdf", ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=cache_volume_gib(args.facts, model.quantization), volume_type="gp3",
                    encrypted="true", kms_key_id=base.kms_key_arn, delete_on_termination="true")))
        script = pulumi.Output.all(image, self.log_group.name, args.hf_token_secret_arn, self.keys_secret.arn,
                                   self.keys_version.version_id).apply(
            lambda v: user_data(v[0], base.region, model, first.gpu_count, v[1], v[2], cache_dir, not nvme, v[3], v[4]))
        return aws.ec2.LaunchTemplate(
            f"{name}-template", image_id=ami_id, instance_type=first.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            # The container reaches no instance credentials (it reads the token as a file), so the smallest hop
            # limit works, and it keeps containers on Docker's bridge network from reaching IMDS at all.
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1,
                instance_metadata_tags="disabled"),
            network_interfaces=[aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                associate_public_ip_address="false", security_groups=[self.instance_sg.id],
                delete_on_termination="true")],
            block_device_mappings=volumes,
            user_data=script.apply(lambda s: base64.b64encode(s.encode()).decode()),
            update_default_version=True,
            tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                                for kind in ("instance", "volume")],
            tags=tags, opts=pulumi.ResourceOptions(parent=self))

    def _load_balancer(self, name: str, args: GpuInstancePoolArgs,
                       listen_port: int) -> tuple[aws.lb.TargetGroup, aws.lb.LoadBalancer]:
        """The internal ALB (access logs, deletion protection by tier), its HTTPS listener (TLS 1.2+; the given
        certificate, or one the stack's CA issues for its DNS name, imported into ACM), and the HTTPS target group
        whose health check is the adapter's readiness (the ALB does not verify the instances' certificates)."""
        child = pulumi.ResourceOptions(parent=self)
        base, tags = args.foundation, args.tags
        target_group = aws.lb.TargetGroup(
            f"{name}-tg", name=f"{args.pool_name}"[:32], port=PORT, protocol="HTTPS", target_type="instance",
            vpc_id=base.vpc_id,
            # Long enough for a stream in flight to finish when an instance leaves (spot interruption, scale-in).
            deregistration_delay=args.deregistration_delay_seconds,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=HEALTH_PATH, port=str(PORT), protocol="HTTPS", matcher="200", interval=15, timeout=5,
                healthy_threshold=2, unhealthy_threshold=3),
            tags=tags, opts=child)
        load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb", name=f"{args.pool_name}"[:32], internal=True, load_balancer_type="application",
            subnets=base.subnet_ids, security_groups=[self.lb_sg.id], drop_invalid_header_fields=True,
            # Longer than the longest gap between two streamed tokens (a long prefill), or streams are cut.
            idle_timeout=args.idle_timeout_seconds,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                bucket=args.access_log_bucket, prefix=f"{ALB_LOGS_PREFIX}/{args.pool_name}", enabled=True),
            enable_deletion_protection=args.deletion_protection, tags=tags, opts=child)
        certificate_arn: pulumi.Input[str]
        if args.certificate_arn is not None:
            certificate_arn = args.certificate_arn
        else:
            ca = PrivateCa(f"{name}-ca", PrivateCaArgs(common_name=f"selfhost-llm {args.pool_name} internal CA",
                                                       tags=tags), opts=child)
            issued = ca.issue("alb", [load_balancer.dns_name])
            # Imported certificates are not renewed by ACM: the CA's early renewal replaces it on a `pulumi up`.
            certificate_arn = aws.acm.Certificate(
                f"{name}-certificate", private_key=issued.private_key_pem, certificate_body=issued.cert_pem,
                certificate_chain=ca.certificate_pem, tags=tags, opts=child).arn
            self.ca_certificate_pem = ca.certificate_pem
        aws.lb.Listener(
            f"{name}-listener", load_balancer_arn=load_balancer.arn, port=listen_port,
            protocol="HTTPS", certificate_arn=certificate_arn, ssl_policy=SSL_POLICY,
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)],
            tags=tags, opts=child)
        return target_group, load_balancer

    def _group(self, name: str, args: GpuInstancePoolArgs) -> aws.autoscaling.Group:
        """The Auto Scaling group over the private subnets (on-demand base, spot above it over every listed type,
        capacity rebalancing, instance refresh with rollback) and its target tracking on requests per target."""
        child = pulumi.ResourceOptions(parent=self)
        scaling = args.scaling
        on_demand_above = round(100 * (1 - args.spot_share))
        # A version number, never $Latest: refresh rollback needs a fixed one.
        version = self.launch_template.latest_version.apply(str)
        # Warm pools take neither spot nor a mixed instances policy (PutWarmPool API): such a pool is on demand,
        # one type, with stopped instances ready (its config checks say so).
        warm = args.warm_pool
        group = aws.autoscaling.Group(
            f"{name}-asg", name=args.pool_name, vpc_zone_identifiers=args.foundation.subnet_ids,
            min_size=scaling.min_replicas, max_size=scaling.max_replicas,
            capacity_rebalance=not warm, health_check_type="ELB",
            health_check_grace_period=args.startup_timeout_seconds, target_group_arns=[self.target_group.arn],
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=self.launch_template.id, version=version)
            if warm else None,
            warm_pool=aws.autoscaling.GroupWarmPoolArgs(pool_state="Stopped", min_size=1) if warm else None,
            mixed_instances_policy=None if warm else aws.autoscaling.GroupMixedInstancesPolicyArgs(
                instances_distribution=aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
                    on_demand_base_capacity=args.on_demand_base,
                    on_demand_percentage_above_base_capacity=on_demand_above,
                    spot_allocation_strategy="price-capacity-optimized"),
                launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                    launch_template_specification=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs(
                        launch_template_id=self.launch_template.id, version=version),
                    overrides=[aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(
                        instance_type=i.instance_type) for i in args.instances]),
            ),
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling", preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=90, instance_warmup=str(args.startup_timeout_seconds),
                    auto_rollback=True, skip_matching=True)),
            tags=[aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True) for k, v in args.tags.items()],
            opts=child)
        aws.autoscaling.Policy(
            f"{name}-scaling", autoscaling_group_name=group.name, policy_type="TargetTrackingScaling",
            target_tracking_configuration=aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                predefined_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ALBRequestCountPerTarget",
                    resource_label=pulumi.Output.concat(self.load_balancer.arn_suffix, "/",
                                                        self.target_group.arn_suffix)),
                target_value=scaling.requests_per_instance_per_minute),
            opts=child)
        return group
