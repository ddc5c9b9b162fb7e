"""Which changes replace the `aws` platform's resources (components/replacement.py), from terraform-provider-aws's
source, each rule citing it: pulumi-aws is bridged from that provider, so its ForceNew arguments are replacements.

Read through `Platform.replacement_rules()` of the `aws` platform (components/targets/aws.py).
"""

from __future__ import annotations

from ..replacement import EVERY, Rule

# Why a Terraform provider's ForceNew is a Pulumi replacement: said once, under the sources in a PR comment.
NOTE = ("pulumi-aws bridges terraform-provider-aws: pulumi-terraform-bridge's Diff turns a ForceNew attribute into a "
        "replacement")

_TF_AWS = "terraform-provider-aws internal/service/"
_AWS_TAGS = ("tags", "tagsAll")
# pulumi-aws v7 adds a per-resource `region` input; it is not in the sources read here, and a resource cannot
# move between regions in place, so its change is a "may".
_REGION = ("region",)

RULES: dict[str, Rule] = {
    "aws:sagemaker/model:Model": Rule(
        replace=(EVERY,), except_=_AWS_TAGS,
        note="a SageMaker model cannot be changed: a new one is created under a new name, and the endpoint "
             "configuration naming it is replaced with it",
        source=f"{_TF_AWS}sagemaker/model.go: every argument but tags is ForceNew (primary_container.*, "
               "execution_role_arn, vpc_config, enable_network_isolation, name...)"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": Rule(
        replace=(EVERY,), except_=_AWS_TAGS,
        risk="endpoint configurations are immutable: a new one is created and the endpoint is updated to it, a "
             "blue/green deployment (SageMaker provisions the new fleet beside the old one: instance quota for "
             "both, traffic shifted per the endpoint's deploymentConfig)",
        source=f"{_TF_AWS}sagemaker/endpoint_configuration.go: every argument but tags is ForceNew "
               "(production_variants.*, data_capture_config, kms_key_arn...)"),
    "aws:sagemaker/endpoint:Endpoint": Rule(
        replace=("name", "deploymentConfig.autoRollbackConfiguration"), maybe=_REGION,
        risk="downtime: a replaced endpoint is a new endpoint; requests fail until it is InService (with a fixed "
             "name the old one must be deleted first)",
        removal="downtime: the endpoint stops serving",
        updates=(("endpointConfigName", "SageMaker moves the endpoint to the new configuration in place: a "
                                        "blue/green deployment per its deploymentConfig"),),
        source=f"{_TF_AWS}sagemaker/endpoint.go: name and deployment_config.auto_rollback_configuration are "
               "ForceNew; endpoint_config_name and the rest of deployment_config call UpdateEndpoint"),
    "aws:s3/bucket:Bucket": Rule(
        replace=("bucket", "bucketPrefix", "objectLockEnabled"), maybe=_REGION,
        risk="data loss and a new address: the new bucket is empty and has another name; the objects stay in the "
             "old one, which is deleted",
        removal="data loss: the bucket and its objects go",
        source="terraform-provider-aws website/docs/r/s3_bucket.html.markdown: bucket, bucket_prefix and "
               "object_lock_enabled are 'Forces new resource'"),
    "aws:kms/key:Key": Rule(
        replace=("customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"), maybe=_REGION,
        risk="data loss: what the old key encrypted (objects, secrets, logs) decrypts only with it, and a replaced "
             "key is scheduled for deletion",
        removal="data loss: what the key encrypted cannot be decrypted once its deletion window ends",
        source=f"{_TF_AWS}kms/key.go: custom_key_store_id, customer_master_key_spec, key_usage, multi_region and "
               "xks_key_id are ForceNew"),
    "aws:ec2/vpc:Vpc": Rule(
        replace=("cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength"), maybe=_REGION,
        risk="downtime and new addresses: the subnets, endpoints and gateways in the VPC are recreated with it",
        removal="downtime: everything in the VPC loses its network",
        source=f"{_TF_AWS}ec2/vpc_.go: cidr_block, ipv4_ipam_pool_id and ipv4_netmask_length are ForceNew"),
    "aws:ec2/subnet:Subnet": Rule(
        replace=("availabilityZone", "availabilityZoneId", "cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength",
                 "ipv6IpamPoolId", "ipv6Native", "ipv6NetmaskLength", "outpostArn", "vpcId"),
        # ForceNewIf: only when the subnet was created with assignIpv6AddressOnCreation.
        maybe=("ipv6CidrBlock", *_REGION),
        risk="downtime and new addresses: the network interfaces in the subnet (endpoints, NAT, instances) are "
             "recreated",
        removal="downtime: what runs in the subnet loses its network",
        source=f"{_TF_AWS}ec2/vpc_subnet.go: availability_zone(_id), cidr_block, the IPAM and IPv6 options, "
               "outpost_arn and vpc_id are ForceNew, ipv6_cidr_block by a ForceNewIf"),
    "aws:ecs/taskDefinition:TaskDefinition": Rule(
        replace=(EVERY,), except_=_AWS_TAGS,
        note="a task definition cannot be changed: every change registers a new revision of the family, and the "
             "service naming it rolls its tasks onto it (new tasks first, the old drained; the circuit breaker "
             "rolls back a revision whose tasks never turn healthy)",
        source=f"{_TF_AWS}ecs/task_definition.go: every argument but tags is ForceNew (container_definitions, cpu, "
               "memory, family, execution_role_arn, task_role_arn, volume, runtime_platform...)"),
    "aws:ecs/service:Service": Rule(
        replace=("name", "cluster", "launchType", "iamRole", "schedulingStrategy", "deploymentController.type"),
        maybe=_REGION,
        risk="downtime: a replaced service is a new one; with its fixed name the old is deleted first, and the "
             "load balancer has no target until the new tasks pass their health checks",
        removal="downtime: the router stops answering",
        updates=(("taskDefinition", "a rolling deployment onto the new revision (minimum healthy 100%)"),),
        source=f"{_TF_AWS}ecs/service.go: cluster, deployment_controller.type, iam_role, launch_type, name and "
               "scheduling_strategy are ForceNew; the rest (task_definition, network_configuration, load_balancer, "
               "desired_count...) call UpdateService"),
    "aws:ecs/cluster:Cluster": Rule(
        replace=("name",), maybe=_REGION,
        risk="downtime: the services in it are deleted with it and created in the new one",
        source=f"{_TF_AWS}ecs/cluster.go: name is ForceNew; settings, configuration and the capacity providers "
               "update in place"),
}

PREFIXES: tuple[tuple[str, Rule], ...] = ()
