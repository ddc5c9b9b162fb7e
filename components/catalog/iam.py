"""IAM facts the components grant by and the policy rules check against (pure data, no provider SDK)."""

from __future__ import annotations

# Actions AWS authorizes only against "*" (Service Authorization Reference: no resource types listed).
# Everything else in a role names its resources.
ACTIONS_WITHOUT_RESOURCE_LEVEL = frozenset({
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
})
# ec2:DeleteNetworkInterfacePermission is not among them: the reference lists `network-interface` for it (with the
# ec2:Vpc and ec2:Subnet condition keys), so the role names the interfaces.

# Google Cloud roles granted at project level (nothing narrower exists for writing logs and metrics).
PROJECT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")
# Never granted by this project: basic roles and identity administration.
FORBIDDEN_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer", "roles/iam.serviceAccountAdmin",
                             "roles/iam.serviceAccountKeyAdmin", "roles/iam.serviceAccountTokenCreator",
                             "roles/resourcemanager.projectIamAdmin"})
