"""The inputs of the `aws` platform's resources worth a glance in `selfhost preview`'s tree (the full set is in
--json): resource type -> input paths.

Read through `Platform.summary_fields()` of the `aws` platform (components/targets/aws.py).
"""

from __future__ import annotations

FIELDS: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("availabilityZone", "cidrBlock"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("serviceName", "vpcEndpointType"),
    "aws:ec2/flowLog:FlowLog": ("trafficType",),
    "aws:kms/key:Key": ("enableKeyRotation",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "rules[0].applyServerSideEncryptionByDefault.sseAlgorithm",),
    "aws:s3/bucketVersioning:BucketVersioning": ("versioningConfiguration.status",),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("metricName", "threshold"),
    "aws:sagemaker/model:Model": ("primaryContainer.image", "enableNetworkIsolation"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "productionVariants[0].instanceType", "productionVariants[0].initialInstanceCount",
        "productionVariants[0].containerStartupHealthCheckTimeoutInSeconds"),
    "aws:sagemaker/endpoint:Endpoint": ("name",),
    "aws:appautoscaling/target:Target": ("minCapacity", "maxCapacity"),
    "aws:ecs/taskDefinition:TaskDefinition": ("family", "cpu", "memory"),
    "aws:ecs/service:Service": ("launchType", "platformVersion", "desiredCount",
                                "networkConfiguration.assignPublicIp"),
}
