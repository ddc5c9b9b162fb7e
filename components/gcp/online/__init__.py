"""What the `gcp` platform reads from Google Cloud's APIs, online: quotas (`selfhost quota --check`) and list prices
(`selfhost prices refresh`). Imported only by those commands, through the platform (components/targets/gcp.py)."""

from .prices import refresh as refresh_prices
from .quotas import GcpQuotaReader as QuotaReader

__all__ = ["QuotaReader", "refresh_prices"]
