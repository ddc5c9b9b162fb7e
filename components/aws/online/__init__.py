"""What the `aws` platform reads from AWS's APIs, online: quotas and their usage (`selfhost quota --check`) and list
prices (`selfhost prices refresh`). Imported only by those commands, through the platform
(components/targets/aws.py)."""

from .prices import refresh as refresh_prices
from .quotas import AwsQuotaReader as QuotaReader

__all__ = ["QuotaReader", "refresh_prices"]
