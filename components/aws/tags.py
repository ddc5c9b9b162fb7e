"""Tags with a meaning to the cost engine and the policy rules (pure: no provider SDK)."""

# Marks the bucket S3 server access logs are delivered to.
ACCESS_LOGS_PURPOSE = ("selfhost-purpose", "s3-access-logs")
