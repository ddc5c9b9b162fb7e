"""The LiteLLM router ("one OpenAI-compatible entry point", issue 26) on AWS, for stacks without a Kubernetes
cluster: an ECS service on Fargate in the stack's private subnets behind an internal Application Load Balancer.

What it runs is the platform-neutral `RouterRuntime` (components/targets/base.py; its command, files and secrets
come from components/router.py): this module only decides how AWS runs it.

- Secrets: every `runtime.secrets` entry and every key it generates (`runtime.generated`, returned in the endpoint's
  `keys`) is its own Secrets Manager secret, encrypted with the stack's key, that the ECS agent hands the container
  at start (`secrets[].valueFrom`: the ARN, pinned to its version): the task definition, which anyone allowed
  `ecs:DescribeTaskDefinition` reads, holds no value.
- HTTPS end to end: the load balancer listens on 443 only (TLS 1.2+), with the given ACM certificate or one the
  stack's own CA (components/tls.py) issues for its DNS name; it speaks HTTPS to the tasks too. LiteLLM 1.99.4 serves
  TLS from two files named by `SSL_CERTFILE_PATH`/`SSL_KEYFILE_PATH` (proxy/proxy_cli.py 826-838: click options with
  those envvars; 1392-1397 hand them to uvicorn), so a short shell prelude (`TLS_PRELUDE`) writes the tasks'
  certificate (plain) and key (a Secrets Manager secret) into the writable files directory, drops the key from the
  environment and execs `runtime.command` unchanged. The load balancer does not verify target certificates (ELB user
  guide, "Target groups: routing configuration"), so the tasks' certificate is the stack CA's for a fixed internal name.
- Identity: an execution role (pull, read exactly these secrets, decrypt with the stack key, write its log group)
  apart from the task role, which may invoke exactly the SageMaker endpoints of `runtime.routes` signed with SigV4.

Sizing: Fargate bills a task's vCPUs and memory; `fargate_size_problem` checks the combination Fargate accepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ..catalog.images import ecr_repository_arn, is_ecr
from ..keys import api_keys, slug
from ..router_runtime import Route, RouterEndpoint, RouterRuntime
from ..tls import PrivateCa, PrivateCaArgs
from .foundation import AwsFoundation
from .pool import ALB_LOGS_PREFIX, LISTEN_PORT, SSL_POLICY
from .pool_monitoring import PoolAlarmThresholds, alb_alarms, router_dashboard_body

PLATFORM_VERSION = "LATEST"
"""Fargate's Linux platform version: LATEST, which AWS keeps patched and resolves at each deployment (1.4.0 since
2020; it takes task-scoped bind mounts on ephemeral storage, encrypted by Fargate, and Secrets Manager references:
ECS developer guide, "Fargate Linux platform versions"). A pinned version is retired on AWS's schedule anyway, and
a running task keeps the version it started on until the service deploys again."""
CONTAINER = "litellm"
INIT_CONTAINER = "volumes-init"
USER = "65534:65534"
"""nobody:nogroup, the user LiteLLM's non-root image runs as (docker/Dockerfile.non_root); stated in the task
definition too, so the policy sees it and another image cannot run as root."""
STOP_TIMEOUT_SECONDS = 120
"""SIGTERM to SIGKILL: Fargate's maximum (ECS container definition `stopTimeout`). ECS stops a task only after the
load balancer has drained it (`deregistration_delay`), so streams in flight get that long to finish, then this."""
HEALTH_CHECK_GRACE_SECONDS = 120
"""How long a starting task's failed health checks do not count: the proxy loads its config and imports its
providers in well under a minute (tests/adapter/test_hybrid_router.py starts it), twice that for a cold pull."""
TASK_TLS_NAME = "router.tasks.selfhost.internal"
"""The tasks' certificate's name: the load balancer does not verify it; `.internal` is reserved for private use
(ICANN, 2024-07-29), so it names nothing outside."""
TLS_CERT_VAR = "SELFHOST_TLS_CERT"
TLS_KEY_VAR = "SELFHOST_TLS_KEY"
TLS_PRELUDE = (
    'set -eu; umask 077; mkdir -p "$(dirname "$SSL_CERTFILE_PATH")" "$(dirname "$SSL_KEYFILE_PATH")"; '
    f'printf "%s\\n" "${TLS_CERT_VAR}" > "$SSL_CERTFILE_PATH"; '
    f'printf "%s\\n" "${TLS_KEY_VAR}" > "$SSL_KEYFILE_PATH"; '
    f'unset {TLS_KEY_VAR} {TLS_CERT_VAR}; exec "$@"')
"""Writes the tasks' certificate and key into the files directory (owner-only), removes the key from the
environment the proxy inherits, then runs the router's own command as it is (`"$@"`)."""
ALB_IDLE_TIMEOUT_MAX_SECONDS = 4000
"""An Application Load Balancer's idle timeout is 1-4000 s (ELB API, load balancer attribute
idle_timeout.timeout_seconds)."""
DEREGISTRATION_DELAY_MAX_SECONDS = 3600
"""A target group's deregistration delay is 0-3600 s (ELB API, deregistration_delay.timeout_seconds)."""

# Fargate's task sizes: CPU units -> the memory (MiB) it accepts (ECS developer guide, "Task CPU and memory",
# Linux): a range with its step.
FARGATE_SIZES: dict[int, tuple[int, int, int]] = {
    256: (512, 2048, 512), 512: (1024, 4096, 1024), 1024: (2048, 8192, 1024), 2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024), 8192: (16384, 61440, 4096), 16384: (32768, 122880, 8192)}


def cpu_units(cpu: float) -> int:
    """vCPUs as ECS writes them: 1024 units a vCPU."""
    return round(cpu * 1024)


def fargate_size_problem(cpu: float, memory_mib: int) -> str | None:
    """Why Fargate refuses a task of `cpu` vCPUs and `memory_mib`; None: it accepts it. (256 units take 512, 1024
    or 2048 MiB only: the table's step would allow 1536, which Fargate does not.)"""
    units = cpu_units(cpu)
    if units not in FARGATE_SIZES:
        return (f"{cpu:g} vCPU is not a Fargate task size (allowed: "
                f"{', '.join(f'{u / 1024:g}' for u in FARGATE_SIZES)})")
    low, high, step = FARGATE_SIZES[units]
    allowed = [m for m in range(low, high + 1, step) if not (units == 256 and m == 1536)]
    if memory_mib not in allowed:
        shown = (", ".join(map(str, allowed)) if len(allowed) <= 4
                 else f"{low}-{high} in steps of {step}")
        return f"{memory_mib} MiB is not a memory size Fargate accepts with {cpu:g} vCPU (allowed: {shown} MiB)"
    return None


def sigv4_endpoint_arns(routes: Sequence[Route]) -> list[pulumi.Input[str]]:
    """The SageMaker endpoint ARNs the router signs its calls to: the routes whose auth is `aws-sigv4`."""
    arns = []
    for route in routes:
        if route.auth != "aws-sigv4":
            continue
        arn = route.details.get("endpointArn")
        if arn is None:
            raise ValueError(f"route {route.name!r} authenticates with aws-sigv4 but its record has no endpointArn")
        arns.append(arn)
    return arns


def idle_timeout_seconds(timeout_seconds: float) -> int:
    """The load balancer's idle timeout: a minute above the longest attempt, so the router gives up first and
    answers (a 504 from the load balancer would say nothing of which target failed)."""
    idle = math.ceil(timeout_seconds) + 60
    if idle > ALB_IDLE_TIMEOUT_MAX_SECONDS:
        raise ValueError(f"the router's timeout ({timeout_seconds:g} s) leaves no room under the load balancer's "
                         f"maximum idle timeout ({ALB_IDLE_TIMEOUT_MAX_SECONDS} s)")
    return idle


@dataclass(frozen=True)
class RouterScaling:
    """Target tracking on the tasks' average CPU (ECSServiceAverageCPUUtilization).

    Why CPU and not ALBRequestCountPerTarget: a router's requests differ in length by four orders of magnitude (a
    model listing in milliseconds, a stream for minutes), so requests per target per minute says little about load,
    while the proxy's work (parsing, relaying SSE chunks, its asyncio loop) is CPU; a saturated loop shows as CPU
    before it shows as latency. The proxy runs one worker process unless told (proxy_cli.py `--num_workers`, default
    1), which uses at most one vCPU: the target is taken of what that worker can use, so a 2-vCPU task scales at
    half the percentage (`target_percent_of`)."""

    cpu_percent: float = 60.0
    """Of one worker's vCPU: room for a burst while a new task starts (about a minute on Fargate)."""
    scale_in_cooldown_seconds: int = 300
    """Slow in: a task leaving drains its streams first (the deregistration delay)."""
    scale_out_cooldown_seconds: int = 60

    def target_percent_of(self, cpu: float) -> float:
        return round(self.cpu_percent * min(1.0, 1.0 / cpu), 1)


@dataclass(frozen=True)
class RouterArgs:
    foundation: AwsFoundation
    runtime: RouterRuntime
    production: bool
    """Deletion protection on the load balancer (the production tier)."""
    scaling: RouterScaling = field(default_factory=RouterScaling)
    alarms: PoolAlarmThresholds = field(default_factory=lambda: PoolAlarmThresholds(
        target_5xx_percent=5.0, p95_response_seconds=20.0, unhealthy_minutes=10, no_healthy_minutes=3))
    """components/aws/pool_monitoring.py says why these defaults; the router answers headers at the first token of a
    stream, as the pools' adapter does, so the same p95 holds."""


class Router(pulumi.ComponentResource):
    """The LiteLLM proxy on Fargate: an ECS cluster (Container Insights), a task definition (read-only root, non-root,
    no capabilities, secrets by reference, HTTPS on its port), an execution role and a task role, a service in the
    private subnets (no public IP, circuit breaker with rollback, autoscaling on CPU), an internal ALB (HTTPS 443
    only, TLS 1.2+, access logs, deletion protection in production, invalid headers dropped) and alarms."""

    def __init__(self, name: str, args: RouterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:Router", name, None, opts)
        rt, base = args.runtime, args.foundation
        problems = [p for p in (fargate_size_problem(rt.cpu, rt.memory_mib),) if p]
        if rt.min_replicas < 1 or rt.max_replicas < rt.min_replicas:
            problems.append(f"replicas {rt.min_replicas}..{rt.max_replicas}: at least one, min <= max")
        if problems:
            raise ValueError(f"router {rt.name!r}: " + "; ".join(problems))
        child = pulumi.ResourceOptions(parent=self)
        self._tags = dict(rt.tags)

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/selfhost/{rt.name}", retention_in_days=base.log_retention_days,
            kms_key_id=base.kms_key_arn, tags=self._tags, opts=child)
        # The stack's CA: the tasks' certificate always, the load balancer's when no ACM certificate is given.
        self._ca = PrivateCa(f"{name}-ca", PrivateCaArgs(common_name=f"selfhost-llm {rt.name} internal CA",
                                                         tags=self._tags), opts=child)
        tasks_cert = self._ca.issue("tasks", [TASK_TLS_NAME])
        # The callers' keys and the admin key, generated here: they live in the stack's state and Secrets Manager.
        self.keys = api_keys(name, rt.generated, self)
        self.secrets = self._secrets(name, args, tasks_cert.private_key_pem)
        self.execution_role, self.task_role = self._roles(name, args)
        self.lb_sg, self.task_sg = self._security_groups(name, args)
        self.ca_certificate_pem: pulumi.Output[str] | None = None
        self.target_group, self.load_balancer = self._load_balancer(name, args)
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster", name=rt.name,
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            # The service does not enable ECS Exec; should someone turn it on, every session is logged to the
            # router's log group, encrypted with the stack key.
            configuration=aws.ecs.ClusterConfigurationArgs(
                execute_command_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationArgs(
                    kms_key_id=base.kms_key_arn, logging="OVERRIDE",
                    log_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationLogConfigurationArgs(
                        cloud_watch_log_group_name=self.log_group.name, cloud_watch_encryption_enabled=True))),
            tags=self._tags, opts=child)
        self.task_definition = self._task_definition(name, args, tasks_cert.cert_pem)
        self.service = self._service(name, args)
        self._autoscaling(name, args)
        alarms = alb_alarms(self, name, rt.name, self.load_balancer.arn_suffix, self.target_group.arn_suffix,
                            self._tags, args.alarms, rt.min_replicas)
        body = pulumi.Output.all(self.load_balancer.arn_suffix, self.target_group.arn_suffix, self.cluster.name,
                                 self.service.name, self.log_group.name, [a.arn for a in alarms]).apply(
            lambda v: json.dumps(router_dashboard_body(rt.name, base.region, *v)))
        self.dashboard = aws.cloudwatch.Dashboard(f"{name}-dashboard", dashboard_name=rt.name, dashboard_body=body,
                                                  opts=child)

        self.base_url = pulumi.Output.concat("https://", self.load_balancer.dns_name, "/v1")
        details: dict[str, Any] = {"loadBalancerArn": self.load_balancer.arn, "serviceName": self.service.name,
                                   "clusterName": self.cluster.name, "logGroup": self.log_group.name}
        if self.ca_certificate_pem is not None:
            details["caCertificate"] = self.ca_certificate_pem
        self.endpoint = RouterEndpoint(base_url=self.base_url, keys=self.keys, details=details)
        self.register_outputs({"baseUrl": self.base_url, "serviceName": self.service.name,
                               "loadBalancerArn": self.load_balancer.arn})

    def _secrets(self, name: str, args: RouterArgs, tls_key: pulumi.Output[str]
                 ) -> dict[str, aws.secretsmanager.Secret]:
        """Variable -> its secret: each of `runtime.secrets`, the generated keys and the tasks' TLS key. One secret
        a variable, so the execution role is granted exactly those ARNs and `valueFrom` names the secret whole."""
        child = pulumi.ResourceOptions(parent=self)
        rt, base = args.runtime, args.foundation
        values: dict[str, pulumi.Input[str]] = {**rt.secrets, **self.keys, TLS_KEY_VAR: tls_key}
        if len(values) != len(rt.secrets) + len(self.keys) + 1:
            raise ValueError(f"router {rt.name!r}: a variable is both given and generated, or is the platform's own "
                             f"({TLS_KEY_VAR})")
        out: dict[str, aws.secretsmanager.Secret] = {}
        self._versions: dict[str, aws.secretsmanager.SecretVersion] = {}
        for variable in sorted(values):
            role = slug(variable)
            secret = aws.secretsmanager.Secret(
                f"{name}-secret-{role}", description=f"{rt.name}: {variable}, read by the router's tasks at start",
                kms_key_id=base.kms_key_arn, recovery_window_in_days=7, tags=self._tags, opts=child)
            value: pulumi.Output[str] = pulumi.Output.secret(values[variable])
            self._versions[variable] = aws.secretsmanager.SecretVersion(
                f"{name}-secret-{role}-version", secret_id=secret.id, secret_string=value, opts=child)
            out[variable] = secret
        return out

    def _secret_references(self) -> dict[str, pulumi.Output[str]]:
        """Variable -> `valueFrom`: the secret's ARN pinned to the version this update wrote
        (`<arn>:<json-key>:<version-stage>:<version-id>`, ECS developer guide "Pass Secrets Manager secrets
        through environment variables"; aws-cdk's ecs.Secret.fromSecretsManagerVersion writes the same). ECS reads a
        secret only when a task starts: pinned, a new value (a rotated key) is a new task definition revision, which
        the service rolls out, instead of reaching only the tasks that happen to start later."""
        return {v: pulumi.Output.concat(self.secrets[v].arn, ":::", self._versions[v].version_id)
                for v in self.secrets}

    def _roles(self, name: str, args: RouterArgs) -> tuple[aws.iam.Role, aws.iam.Role]:
        """The execution role (what ECS does to start the task) and the task role (what the proxy may call)."""
        child = pulumi.ResourceOptions(parent=self)
        rt, base = args.runtime, args.foundation
        # Confused-deputy guard: only ECS tasks of this account assume them (ECS developer guide, "Task IAM role").
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": base.account_id}}}]})
        execution = aws.iam.Role(f"{name}-execution-role", description=f"ECS execution role of {rt.name}",
                                 assume_role_policy=trust, tags=self._tags, opts=child)
        statements: list[dict[str, Any]] = [
            {"Sid": "ReadRouterSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": [s.arn for s in self.secrets.values()]},
            # The secrets are encrypted with the stack key.
            {"Sid": "DecryptWithStackKey", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": base.kms_key_arn},
            {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": pulumi.Output.concat(self.log_group.arn, ":*")},
        ]
        if is_ecr(rt.image):
            repository = ecr_repository_arn(rt.image)
            # An image in ECR (a mirror of LiteLLM's, for a network without NAT): the registry login and pulls from
            # that one repository. A public registry's image (ghcr.io) needs neither.
            statements += [
                {"Sid": "PullImage", "Effect": "Allow", "Resource": repository,
                 "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]},
                {"Sid": "LogInToEcr", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}]
        aws.iam.RolePolicy(f"{name}-execution-policy", role=execution.id,
                           policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
                           opts=child)
        task = aws.iam.Role(f"{name}-task-role", description=f"What the router {rt.name} may call",
                            assume_role_policy=trust, tags=self._tags, opts=child)
        arns = sigv4_endpoint_arns(rt.routes)
        if arns:
            # litellm's sagemaker_chat provider calls InvokeEndpoint, and InvokeEndpointWithResponseStream for a
            # stream (components/litellm.py SageMakerBackend), with the task role's credentials.
            aws.iam.RolePolicy(f"{name}-task-policy", role=task.id, policy=pulumi.Output.json_dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Sid": "InvokeRoutedEndpoints", "Effect": "Allow",
                    "Action": ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
                    "Resource": arns}]}), opts=child)
        return execution, task

    def _security_groups(self, name: str, args: RouterArgs
                         ) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
        """The load balancer's (443 from the VPC and the allowed ranges; the router port out to the VPC) and the
        tasks' (the router port from the load balancer only; HTTPS out)."""
        child = pulumi.ResourceOptions(parent=self)
        rt, base = args.runtime, args.foundation
        callers = [aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=LISTEN_PORT, to_port=LISTEN_PORT,
                                                    cidr_blocks=[base.vpc_cidr], description="clients in the VPC")]
        if rt.allowed_cidrs:
            callers.append(aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=LISTEN_PORT, to_port=LISTEN_PORT, cidr_blocks=list(rt.allowed_cidrs),
                description="clients in the allowed ranges (router.allowedCidrs)"))
        lb_sg = aws.ec2.SecurityGroup(
            f"{name}-lb-sg", vpc_id=base.vpc_id, description=f"{rt.name} load balancer: HTTPS from its callers",
            ingress=callers,
            # The tasks' addresses are in the private subnets: the VPC range, not the tasks' group, which would
            # make the two groups refer to each other.
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=rt.port, to_port=rt.port,
                                                    cidr_blocks=[base.vpc_cidr], description="the router's tasks")],
            tags={**self._tags, "Name": f"{name}-lb-sg"}, opts=child)
        task_sg = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=base.vpc_id, description=f"{rt.name} tasks: from the load balancer only",
            ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=rt.port, to_port=rt.port,
                                                      security_groups=[lb_sg.id], description="the ALB")],
            # One rule covers every route and what the task needs to start: SageMaker runtime and Secrets Manager
            # (interface endpoints in the VPC), the image registry and Hugging Face endpoints (the NAT), and the
            # aws-pool targets, whose load balancers listen on 443 too. DNS to the VPC resolver is not filtered by
            # security groups.
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                    cidr_blocks=["0.0.0.0/0"],
                                                    description="HTTPS: AWS APIs, the image registry, the targets")],
            tags={**self._tags, "Name": f"{name}-sg"}, opts=child)
        return lb_sg, task_sg

    def _load_balancer(self, name: str, args: RouterArgs) -> tuple[aws.lb.TargetGroup, aws.lb.LoadBalancer]:
        """The internal ALB, its HTTPS listener and the HTTPS target group of the tasks (health: readiness)."""
        child = pulumi.ResourceOptions(parent=self)
        rt, base = args.runtime, args.foundation
        target_group = aws.lb.TargetGroup(
            f"{name}-tg", name=rt.name[:32].rstrip("-"), port=rt.port, protocol="HTTPS", target_type="ip",
            vpc_id=base.vpc_id,
            # A leaving task (scale-in, deployment) keeps its streams for as long as one attempt may take.
            deregistration_delay=min(DEREGISTRATION_DELAY_MAX_SECONDS, math.ceil(rt.timeout_seconds)),
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=rt.readiness_path, port="traffic-port", protocol="HTTPS", matcher="200", interval=15,
                timeout=5, healthy_threshold=2, unhealthy_threshold=3),
            tags=self._tags, opts=child)
        load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb", name=rt.name[:32].rstrip("-"), internal=True, load_balancer_type="application",
            subnets=base.subnet_ids, security_groups=[self.lb_sg.id], drop_invalid_header_fields=True,
            idle_timeout=idle_timeout_seconds(rt.timeout_seconds),
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                bucket=base.access_log_bucket, prefix=f"{ALB_LOGS_PREFIX}/{rt.name}", enabled=True),
            enable_deletion_protection=args.production, tags=self._tags, opts=child)
        certificate_arn: pulumi.Input[str]
        if rt.certificate is not None:
            certificate_arn = rt.certificate
        else:
            issued = self._ca.issue("alb", [load_balancer.dns_name])
            # Imported certificates are not renewed by ACM: the CA's early renewal replaces it on a `pulumi up`.
            certificate_arn = aws.acm.Certificate(
                f"{name}-certificate", private_key=issued.private_key_pem, certificate_body=issued.cert_pem,
                certificate_chain=self._ca.certificate_pem, tags=self._tags, opts=child).arn
            self.ca_certificate_pem = self._ca.certificate_pem
        aws.lb.Listener(
            f"{name}-listener", load_balancer_arn=load_balancer.arn, port=LISTEN_PORT, protocol="HTTPS",
            certificate_arn=certificate_arn, ssl_policy=SSL_POLICY,
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)],
            tags=self._tags, opts=child)
        return target_group, load_balancer

    def _task_definition(self, name: str, args: RouterArgs, tls_cert: pulumi.Output[str]) -> aws.ecs.TaskDefinition:
        rt, base = args.runtime, args.foundation
        tls_dir = rt.files_dir.rstrip("/")
        plain: dict[str, pulumi.Input[str]] = {
            **rt.environment, **rt.files, TLS_CERT_VAR: tls_cert,
            "SSL_CERTFILE_PATH": f"{tls_dir}/router-tls.crt", "SSL_KEYFILE_PATH": f"{tls_dir}/router-tls.key"}
        if len(plain) != len(rt.environment) + len(rt.files) + 3:
            raise ValueError(f"router {rt.name!r}: environment and files name the same variable, or the platform's "
                             f"own ({TLS_CERT_VAR}, SSL_CERTFILE_PATH, SSL_KEYFILE_PATH)")
        names = sorted(plain)
        definitions = pulumi.Output.all(
            [plain[n] for n in names], self._secret_references(), self.log_group.name).apply(
            lambda v: json.dumps(container_definitions(
                rt, dict(zip(names, v[0], strict=True)), v[1], v[2], base.region)))
        return aws.ecs.TaskDefinition(
            f"{name}-task", family=rt.name, requires_compatibilities=["FARGATE"], network_mode="awsvpc",
            cpu=str(cpu_units(rt.cpu)), memory=str(rt.memory_mib),
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(operating_system_family="LINUX",
                                                                        cpu_architecture="X86_64"),
            execution_role_arn=self.execution_role.arn, task_role_arn=self.task_role.arn,
            # Task-scoped bind mounts on Fargate's ephemeral storage (encrypted by Fargate): the writable places
            # of a read-only root file system.
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=v) for v, _ in writable_mounts(rt.files_dir)],
            container_definitions=definitions, tags=self._tags, opts=pulumi.ResourceOptions(parent=self))

    def _service(self, name: str, args: RouterArgs) -> aws.ecs.Service:
        rt, base = args.runtime, args.foundation
        return aws.ecs.Service(
            f"{name}-service", name=rt.name, cluster=self.cluster.arn, task_definition=self.task_definition.arn,
            launch_type="FARGATE", platform_version=PLATFORM_VERSION, desired_count=rt.min_replicas,
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=base.subnet_ids, security_groups=[self.task_sg.id], assign_public_ip=False),
            load_balancers=[aws.ecs.ServiceLoadBalancerArgs(target_group_arn=self.target_group.arn,
                                                            container_name=CONTAINER, container_port=rt.port)],
            health_check_grace_period_seconds=HEALTH_CHECK_GRACE_SECONDS,
            # A deployment whose tasks never become healthy stops and rolls back to the last that did.
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            # New tasks first: capacity never drops below the desired count during a deployment.
            deployment_minimum_healthy_percent=100, deployment_maximum_percent=200,
            propagate_tags="SERVICE", enable_ecs_managed_tags=True, enable_execute_command=False,
            # Autoscaling owns the count once the service runs: a `pulumi up` must not reset it to the minimum
            # (the same trap as terraform-provider-aws#40048 for SageMaker).
            tags=self._tags, opts=pulumi.ResourceOptions(parent=self, ignore_changes=["desiredCount"],
                                                         depends_on=[self.load_balancer]))

    def _autoscaling(self, name: str, args: RouterArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        rt, scaling = args.runtime, args.scaling
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target", service_namespace="ecs", scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", self.cluster.name, "/", self.service.name),
            min_capacity=rt.min_replicas, max_capacity=rt.max_replicas, tags=self._tags, opts=child)
        aws.appautoscaling.Policy(
            f"{name}-scaling", policy_type="TargetTrackingScaling", service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension, resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ECSServiceAverageCPUUtilization"),
                target_value=scaling.target_percent_of(rt.cpu),
                scale_in_cooldown=scaling.scale_in_cooldown_seconds,
                scale_out_cooldown=scaling.scale_out_cooldown_seconds),
            opts=child)


def writable_mounts(files_dir: str) -> list[tuple[str, str]]:
    """(volume name, container path) of the task's writable places: the files directory (the config, the module,
    the TLS files), /tmp (Python's tempfile, uvicorn) and the image's cache (XDG_CACHE_HOME=/app/.cache, as the
    Kubernetes router mounts it)."""
    wanted = dict.fromkeys(["/tmp", "/app/.cache", files_dir.rstrip("/") or "/"])
    # A directory inside another writable one (the router's files under /tmp) needs no volume of its own.
    paths = [p for p in wanted if not any(p != q and p.startswith(q + "/") for q in wanted)]
    return [(slug(path) or "root", path) for path in paths]


def container_definitions(rt: RouterRuntime, plain: Mapping[str, str], secret_refs: Mapping[str, str],
                          log_group: str, region: str) -> list[dict[str, Any]]:
    """The task's containers, as ECS's RegisterTaskDefinition takes them (resolved values): the volumes' opener,
    then the proxy (the router's command behind the TLS prelude, plain variables by value, secrets by reference
    only: pinned ARNs)."""
    paths = writable_mounts(rt.files_dir)
    mounts = [{"sourceVolume": v, "containerPath": p, "readOnly": False} for v, p in paths]

    def logs(prefix: str) -> dict[str, Any]:
        return {"logDriver": "awslogs", "options": {
            "awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": prefix,
            # A slow CloudWatch must not block the proxy's stdout (and so its event loop): buffer, drop if full.
            "mode": "non-blocking", "max-buffer-size": "4m"}}

    opener = {
        # Fargate creates a task's bind mounts owned by root, mode 755, unless the image declares them as VOLUMEs
        # (LiteLLM's does not): the proxy, as nobody, could not write them. AWS's answer is an init container
        # (aws/containers-roadmap#938, #863); this one runs as root with every capability dropped, which still lets
        # the owner chmod, makes the volumes what /tmp is (1777: anyone writes, only owners delete), and exits.
        "name": INIT_CONTAINER, "image": rt.image, "essential": False, "user": "0:0",
        "entryPoint": ["/bin/sh", "-c"], "command": [f"chmod 1777 {' '.join(p for _, p in paths)}"],
        "readonlyRootFilesystem": True, "privileged": False, "linuxParameters": {"capabilities": {"drop": ["ALL"]}},
        "mountPoints": mounts, "logConfiguration": logs("init"),
    }
    proxy = {
        "name": CONTAINER, "image": rt.image, "essential": True,
        "dependsOn": [{"containerName": INIT_CONTAINER, "condition": "SUCCESS"}],
        # The whole argv is ours (the image's entrypoint is replaced): the prelude, then the router's command.
        "entryPoint": ["/bin/sh", "-c", TLS_PRELUDE, "selfhost-router"], "command": list(rt.command),
        "portMappings": [{"containerPort": rt.port, "protocol": "tcp"}],
        "environment": [{"name": k, "value": plain[k]} for k in sorted(plain)],
        "secrets": [{"name": k, "valueFrom": secret_refs[k]} for k in sorted(secret_refs)],
        "readonlyRootFilesystem": True, "user": USER, "privileged": False,
        "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": True},
        "mountPoints": mounts, "stopTimeout": STOP_TIMEOUT_SECONDS, "logConfiguration": logs("router"),
    }
    return [opener, proxy]
