"""What the `azure` platform reads from Azure's APIs, online: Azure ML quotas and usage (`selfhost quota --check`)
and list prices from the public Retail Prices API (`selfhost prices refresh`). Imported only by those commands,
through the platform (components/targets/azure.py)."""

from .prices import refresh as refresh_prices
from .quotas import AzureQuotaReader as QuotaReader

__all__ = ["QuotaReader", "refresh_prices"]
