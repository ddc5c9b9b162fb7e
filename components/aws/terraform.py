"""The `aws` platform's Pulumi types as Terraform resources, for `selfhost export` (components/terraform.py). pulumi-aws
is bridged from terraform-provider-aws: each type is the Terraform resource of the same name.

Read through `Platform.terraform()` of the `aws` platform (components/targets/aws.py).
"""

from __future__ import annotations

from ..terraform import TfType

PROVIDERS = {"aws": "registry.terraform.io/hashicorp/aws"}

_S3_RULES = {"rules": "rule"}

TYPES: dict[str, TfType] = {
    # S3
    "aws:s3/bucket:Bucket": TfType("aws_s3_bucket", {
        "rules": "rule", "lifecycle_rules": "lifecycle_rule", "cors_rules": "cors_rule", "grants": "grant"}),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": TfType(
        "aws_s3_bucket_server_side_encryption_configuration", _S3_RULES),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": TfType("aws_s3_bucket_public_access_block"),
    "aws:s3/bucketVersioning:BucketVersioning": TfType("aws_s3_bucket_versioning"),
    "aws:s3/bucketLogging:BucketLogging": TfType("aws_s3_bucket_logging", {"target_grants": "target_grant"}),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": TfType(
        "aws_s3_bucket_lifecycle_configuration", {"rules": "rule", "transitions": "transition",
                                                  "noncurrent_version_transitions": "noncurrent_version_transition"}),
    "aws:s3/bucketPolicy:BucketPolicy": TfType("aws_s3_bucket_policy"),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": TfType("aws_s3_bucket_ownership_controls"),
    # keys, logs, secrets, images
    "aws:kms/key:Key": TfType("aws_kms_key"),
    "aws:kms/alias:Alias": TfType("aws_kms_alias"),
    "aws:cloudwatch/logGroup:LogGroup": TfType("aws_cloudwatch_log_group"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": TfType(
        "aws_cloudwatch_metric_alarm", {"metric_queries": "metric_query"}, maps=frozenset({"dimensions"})),
    "aws:cloudwatch/dashboard:Dashboard": TfType("aws_cloudwatch_dashboard"),
    "aws:secretsmanager/secret:Secret": TfType("aws_secretsmanager_secret", {"replicas": "replica"}),
    "aws:secretsmanager/secretVersion:SecretVersion": TfType("aws_secretsmanager_secret_version"),
    "aws:ecr/repository:Repository": TfType(
        "aws_ecr_repository", {"encryption_configurations": "encryption_configuration"}),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": TfType("aws_ecr_lifecycle_policy"),
    # network
    "aws:ec2/vpc:Vpc": TfType("aws_vpc"),
    "aws:ec2/subnet:Subnet": TfType("aws_subnet"),
    "aws:ec2/flowLog:FlowLog": TfType("aws_flow_log"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": TfType("aws_default_security_group"),
    "aws:ec2/securityGroup:SecurityGroup": TfType("aws_security_group"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": TfType("aws_vpc_endpoint", {"dns_entries": "dns_entry"}),
    "aws:ec2/internetGateway:InternetGateway": TfType("aws_internet_gateway"),
    "aws:ec2/natGateway:NatGateway": TfType("aws_nat_gateway"),
    "aws:ec2/eip:Eip": TfType("aws_eip"),
    "aws:ec2/routeTable:RouteTable": TfType("aws_route_table", {"routes": "route"}),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": TfType("aws_route_table_association"),
    "aws:lb/loadBalancer:LoadBalancer": TfType("aws_lb", {"subnet_mappings": "subnet_mapping"}),
    "aws:lb/listener:Listener": TfType("aws_lb_listener", {"default_actions": "default_action"}),
    "aws:lb/targetGroup:TargetGroup": TfType("aws_lb_target_group"),
    "aws:acm/certificate:Certificate": TfType("aws_acm_certificate"),
    # compute, scaling, identity
    "aws:ec2/launchTemplate:LaunchTemplate": TfType("aws_launch_template"),
    "aws:autoscaling/group:Group": TfType("aws_autoscaling_group", {
        "tags": "tag", "vpc_zone_identifiers": "vpc_zone_identifier", "overrides": "override"}),
    "aws:autoscaling/policy:Policy": TfType("aws_autoscaling_policy"),
    "aws:appautoscaling/target:Target": TfType("aws_appautoscaling_target"),
    "aws:appautoscaling/policy:Policy": TfType("aws_appautoscaling_policy"),
    "aws:ecs/cluster:Cluster": TfType("aws_ecs_cluster", {"settings": "setting"}),
    "aws:ecs/taskDefinition:TaskDefinition": TfType("aws_ecs_task_definition", {"volumes": "volume"}),
    "aws:ecs/service:Service": TfType("aws_ecs_service", {"load_balancers": "load_balancer"}),
    "aws:iam/role:Role": TfType("aws_iam_role", {"inline_policies": "inline_policy"}),
    "aws:iam/rolePolicy:RolePolicy": TfType("aws_iam_role_policy"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": TfType("aws_iam_role_policy_attachment"),
    "aws:iam/instanceProfile:InstanceProfile": TfType("aws_iam_instance_profile"),
    # SageMaker
    "aws:sagemaker/model:Model": TfType(
        "aws_sagemaker_model", {"containers": "container"}, maps=frozenset({"environment"})),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": TfType("aws_sagemaker_endpoint_configuration"),
    "aws:sagemaker/endpoint:Endpoint": TfType("aws_sagemaker_endpoint"),
}

NOT_MAPPED: dict[str, str] = {
    "pulumi:providers:aws": "a provider configuration, not a resource",
}
