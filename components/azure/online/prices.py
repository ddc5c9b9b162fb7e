"""Azure list prices for `selfhost prices refresh` (through the platform, components/targets/azure.py): the Azure
Retail Prices API, public and unauthenticated.

`GET https://prices.azure.com/api/retail/prices?api-version=2023-01-01-preview&$filter=...` answers
`{"Items": [...], "NextPageLink": url or null, "Count": n}`; an item has serviceName, armRegionName, armSkuName,
productName ("Virtual Machines NCads H100 v5 Series", "... Series Windows"), meterName ("NC40ads H100 v5",
"... Spot", "... Low Priority"), meterId, type/priceType ("Consumption", "DevTestConsumption", "Reservation"),
retailPrice (USD unless asked otherwise), unitOfMeasure ("1 Hour") and effectiveStartDate
(learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices, read 2026-12-08).

What is refreshed: the pay-as-you-go Linux price of every size in components/catalog/azure_instances.py, in each
region asked. That is what Azure ML bills a managed online endpoint's instances (the service adds no charge of its
own; see the source of the committed rows in components/catalog/pricing/data/azure.csv). An item for another OS
(productName with "Windows"), a Spot or Low Priority meter, another unit than "1 Hour", or a price that is missing,
zero or not a number is skipped: a missing row reads as "unknown", a wrong one as a real price. Where the API gives
a size two Linux prices, the latest effectiveStartDate wins; two at that date, the size is skipped with a warning.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ...catalog.azure_instances import INSTANCES
from ...catalog.pricing import PriceRow
from ...catalog.pricing.refresh import Result

PROVIDER = "azure"
RETAIL_PRICES = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
# The API's pages are 1,000 items; a listing that never ends is a broken server, not a reason to hang the refresh.
MAX_PAGES = 50
# An OData filter is a URL parameter: a few sizes per request keep it well under URL length limits.
SKUS_PER_REQUEST = 10


def refresh(regions: Sequence[str], options: Mapping[str, Any]) -> list[Result]:
    """The Retail Prices API's rows for `regions`. `options`: `azure_retail` (the API's URL, default the public one;
    "none" skips it), `azure_http` (an httpx.Client or anything with its `get`, for tests; default a new
    httpx.Client), `today` (the rows' as-of)."""
    regions = list(regions)
    if not regions:
        return []
    base = options.get("azure_retail") or RETAIL_PRICES
    if str(base).lower() == "none":
        return [Result(warnings=["Azure skipped: --source azure_retail=none."])]
    today = options.get("today") or datetime.date.today()
    http = options.get("azure_http")
    if http is not None:
        return [refresh_azure(http, str(base), regions, today)]
    import httpx

    with httpx.Client(timeout=60.0) as client:
        return [refresh_azure(client, str(base), regions, today)]


def vm_filter(region: str, skus: Sequence[str]) -> str:
    """The OData filter for the pay-as-you-go prices of `skus` in `region` (names are ARM's, no quotes inside)."""
    names = " or ".join(f"armSkuName eq '{s}'" for s in skus)
    return (f"serviceName eq 'Virtual Machines' and armRegionName eq '{region}' and priceType eq 'Consumption' "
            f"and ({names})")


def retail_items(http: Any, base: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """Every item of a query, following NextPageLink (a full URL, its query included); a link seen twice or more
    than MAX_PAGES pages end it with a ValueError, never an endless loop."""
    url: str | None = base
    query: Mapping[str, str] | None = params
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        assert url is not None
        response = http.get(url, params=query) if query is not None else http.get(url)
        if response.status_code >= 400:
            raise ValueError(f"GET {url}: HTTP {response.status_code}: {response.text[:200]}")
        page = response.json()
        if not isinstance(page, dict):
            raise ValueError(f"GET {url}: not a Retail Prices page: {str(page)[:200]}")
        yield from page.get("Items") or []
        url = page.get("NextPageLink") or None
        if url is None:
            return
        if url in seen:
            raise ValueError(f"NextPageLink {url} seen twice")
        seen.add(url)
        query = None
    raise ValueError(f"GET {base}: still paginating after {MAX_PAGES} pages")


def skip_reason(item: Mapping[str, Any]) -> str | None:
    """Why an item is not a Linux pay-as-you-go hourly price, or None when it is one."""
    product, meter = str(item.get("productName", "")), str(item.get("meterName", ""))
    if "windows" in product.lower():
        return "Windows"
    if "spot" in meter.lower() or "low priority" in meter.lower():
        return "Spot or Low Priority"
    if item.get("type", "Consumption") != "Consumption":
        return f"type {item.get('type')!r}"
    if item.get("unitOfMeasure") != "1 Hour":
        return f"unit {item.get('unitOfMeasure')!r}"
    if item.get("currencyCode", "USD") != "USD":
        return f"currency {item.get('currencyCode')!r}"
    price = item.get("retailPrice")
    if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
        return f"price {price!r}"
    return None


def parse_items(items: Sequence[Mapping[str, Any]], url: str, regions: Sequence[str], as_of: str) -> Result:
    """Rows for the sizes of azure_instances.py among `items`, one per (region, size)."""
    result = Result()
    # (region, sku) -> {effectiveStartDate: {price: item}}
    found: dict[tuple[str, str], dict[str, dict[float, Mapping[str, Any]]]] = {}
    for item in items:
        sku, region = str(item.get("armSkuName", "")), str(item.get("armRegionName", ""))
        if sku not in INSTANCES or region not in regions or skip_reason(item) is not None:
            continue
        by_date = found.setdefault((region, sku), {})
        by_date.setdefault(str(item.get("effectiveStartDate", "")), {})[float(item["retailPrice"])] = item
    for (region, sku), by_date in sorted(found.items()):
        latest = by_date[max(by_date)]
        if len(latest) > 1:
            result.warnings.append(f"Azure {region} {sku}: {len(latest)} different Linux prices "
                                   f"({', '.join(map(str, sorted(latest)))}), skipped")
            continue
        usd, item = next(iter(latest.items()))
        source = (f"{url}: meterId {item.get('meterId', '?')}, effectiveStartDate "
                  f"{item.get('effectiveStartDate', '?')}, '{item.get('productName', '')}' "
                  f"'{item.get('meterName', '')}' ${usd}/1 Hour (Linux pay-as-you-go)")
        result.rows.append(PriceRow(PROVIDER, "virtual-machines", region, sku, usd, "hour", source, as_of))
    return result


def refresh_azure(http: Any, base: str, regions: Sequence[str], today: datetime.date) -> Result:
    """Query the API per region, a few sizes at a time; a failing query is a warning and the rest still run."""
    result = Result()
    skus = sorted(INSTANCES)
    for region in regions:
        items: list[dict[str, Any]] = []
        for start in range(0, len(skus), SKUS_PER_REQUEST):
            params = {"api-version": API_VERSION, "$filter": vm_filter(region, skus[start:start + SKUS_PER_REQUEST])}
            try:
                items += retail_items(http, base, params)
            except Exception as exc:  # noqa: BLE001 - the client is injected: whatever its transport raises
                result.warnings.append(f"Azure Retail Prices {region}: {type(exc).__name__}: {exc}")
        parsed = parse_items(items, f"{base}?api-version={API_VERSION}", [region], today.isoformat())
        result.rows += parsed.rows
        result.warnings += parsed.warnings
        missing = sorted(set(skus) - {r.sku for r in parsed.rows})
        if items and missing:
            result.warnings.append(f"Azure {region}: no Linux pay-as-you-go price for {', '.join(missing)}")
    return result
