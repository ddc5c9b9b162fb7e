"""The Azure ML data (instance table, price rows, quota rows) hold together, and the online readers (Retail Prices
API, Azure ML usages) turn realistic answers into rows and statuses, with no network: httpx.MockTransport serves
the pages."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from components.azure.online import QuotaReader, refresh_prices
from components.azure.online.prices import RETAIL_PRICES, skip_reason
from components.azure.online.quotas import AzureClient
from components.catalog import azure_instances as az
from components.catalog import quotas as quota_table
from components.catalog.gpus import GPUS
from components.catalog.pricing import DATA_DIR, read_rows
from components.quotas import QuotaNeed

PRICES = DATA_DIR / "azure.csv"
QUOTAS = Path(quota_table.__file__).parent / "data" / "azure_quotas.csv"
TODAY = datetime.date(2026, 12, 8)


# ------------------------------------------------------------------------------------------- instance table


def test_every_instance_is_consistent() -> None:
    assert len(az.INSTANCES) >= 15
    for name, i in az.INSTANCES.items():
        assert name == i.name and name.startswith("Standard_")
        assert i.gpu in GPUS, name
        assert i.gpu_count >= 1 and i.vcpus >= 4 and i.memory_gib > 0
        assert i.family.startswith("standard") and i.family.endswith("Family"), name
    assert az.RESERVE_EXEMPT <= set(az.INSTANCES)
    assert az.SOURCE and datetime.date.fromisoformat(az.AS_OF)


def test_gpu_memory_totals() -> None:
    assert az.total_gpu_memory_gib("Standard_NC24ads_A100_v4") == 80
    assert az.total_gpu_memory_gib("Standard_ND96amsr_A100_v4") == 640
    assert az.total_gpu_memory_gib("Standard_ND96asr_v4") == 320
    assert az.total_gpu_memory_gib("Standard_NC64as_T4_v3") == 64
    assert az.total_gpu_memory_gib("Standard_NC80adis_H100_v5") == 188
    assert az.total_gpu_memory_gib("Standard_NV72ads_A10_v5") == 48
    with pytest.raises(KeyError):
        az.total_gpu_memory_gib("Standard_NV6ads_A10_v5")  # a sixth of a GPU: left out


def test_upgrade_reserve() -> None:
    # The doc's example: 10 instances need quota for 12; the A100/H100 sizes are exempt.
    assert az.UPGRADE_RESERVE == 0.2
    assert az.quota_instances("Standard_NC6s_v3", 10) == 12
    assert az.quota_instances("Standard_NC6s_v3", 1) == 2
    assert az.quota_vcpus("Standard_NC4as_T4_v3", 3) == 4 * 4
    assert az.quota_instances("Standard_NC24ads_A100_v4", 10) == 10


def test_region_tables_name_known_instances() -> None:
    assert {"eastus", "eastus2", "westus3"} <= set(az.REGION_INSTANCES)
    for region, names in az.REGION_INSTANCES.items():
        assert names, region
        assert names <= set(az.INSTANCES), (region, names - set(az.INSTANCES))
    # Every size is offered somewhere.
    assert set().union(*az.REGION_INSTANCES.values()) == set(az.INSTANCES)
    assert az.instances_in("westus3") == az.REGION_INSTANCES["westus3"]
    assert az.instances_in("westeurope") is None  # not known, which is not "none offered"


def test_families_match_the_quota_rows() -> None:
    rows = quota_table._load(QUOTAS)
    families = {i.family for i in az.INSTANCES.values()}
    cores = {need.split(":", 1)[1]: row for need, row in rows.items() if need.startswith("azure-ml-cores:")}
    assert set(cores) == families
    for family, row in cores.items():
        assert row.quota_code == family and row.unit == "vCPUs" and row.scope == "region"
        assert row.platform == "azure" and row.service == "Microsoft.MachineLearningServices"
    assert {"azure-ml-total-cores", "azure-ml-endpoints"} <= set(rows)
    assert all(r.source and r.as_of for r in rows.values())


# ------------------------------------------------------------------------------------------------ price rows


def test_every_price_row_parses_with_source_and_date() -> None:
    rows = read_rows(PRICES)
    assert rows and all(r.provider == "azure" for r in rows)
    assert all(r.source.strip() and datetime.date.fromisoformat(r.as_of) for r in rows)
    assert len({r.key for r in rows}) == len(rows)


def test_every_offered_instance_has_a_vm_price() -> None:
    prices = {(r.region, r.sku) for r in read_rows(PRICES) if r.service == "virtual-machines"}
    for region, names in az.REGION_INSTANCES.items():
        missing = sorted(n for n in names if (region, n) not in prices)
        assert not missing, (region, missing)
    # The platform's own regions price every size.
    for region in ("eastus", "westeurope"):
        assert {n for r, n in prices if r == region} == set(az.INSTANCES), region


def test_the_services_the_foundation_uses_are_priced() -> None:
    keys = {(r.service, r.region, r.sku) for r in read_rows(PRICES)}
    for region in ("eastus", "westeurope"):
        for service, sku in (("container-registry", "premium"), ("private-link", "endpoint"), ("private-dns", "zone"),
                             ("azure-firewall", "standard"), ("azure-firewall", "basic"), ("storage", "blob-hot-zrs"),
                             ("storage", "blob-hot-lrs"),
                             ("log-analytics", "analytics-logs"), ("key-vault", "hsm-rsa-2048"),
                             ("key-vault", "operations")):
            assert (service, region, sku) in keys, (service, region, sku)


def test_list_prices_agree_within_a_family() -> None:
    # Azure prices the NC A100 v4 and NCv3 sizes per GPU: a check that no digit was mistyped.
    vm = {(r.region, r.sku): r.usd for r in read_rows(PRICES) if r.service == "virtual-machines"}
    for region in ("eastus", "eastus2", "westus3"):
        one = vm[(region, "Standard_NC24ads_A100_v4")]
        assert vm[(region, "Standard_NC96ads_A100_v4")] == pytest.approx(4 * one)
        assert vm[(region, "Standard_NC24s_v3")] == pytest.approx(4 * vm[(region, "Standard_NC6s_v3")])


# ------------------------------------------------------------------------------------------- price refresh


def _item(sku: str, price: float, region: str = "eastus", product: str = "Virtual Machines NCads H100 v5 Series",
          meter: str = "NC40ads H100 v5", **extra: Any) -> dict[str, Any]:
    return {"currencyCode": "USD", "tierMinimumUnits": 0.0, "retailPrice": price, "unitPrice": price,
            "armRegionName": region, "location": "US East", "effectiveStartDate": "2024-05-01T00:00:00Z",
            "meterId": f"meter-{sku}-{meter}".replace(" ", "-"), "meterName": meter, "productId": "DZH318Z0BXXX",
            "skuId": "DZH318Z0BXXX/00XX", "productName": product, "skuName": meter, "serviceName": "Virtual Machines",
            "serviceId": "DZH313Z7MMC8", "serviceFamily": "Compute", "unitOfMeasure": "1 Hour",
            "type": "Consumption", "isPrimaryMeterRegion": True, "armSkuName": sku, **extra}


def _retail_transport(pages: dict[str, list[dict[str, Any]]], seen: list[str]) -> httpx.MockTransport:
    """Two pages per query: the first page's NextPageLink leads to the second, as the API's $skip links do."""

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlparse(str(request.url)).query)
        seen.append(str(request.url))
        assert query["api-version"] == ["2023-01-01-preview"]
        filt = query["$filter"][0]
        region = filt.split("armRegionName eq '")[1].split("'")[0]
        items = [i for i in pages.get(region, []) if f"armSkuName eq '{i['armSkuName']}'" in filt]
        if "$skip" in query:
            return httpx.Response(200, json={"BillingCurrency": "USD", "Items": items[1:], "NextPageLink": None,
                                             "Count": len(items[1:])})
        next_link = str(request.url.copy_merge_params({"$skip": "1000"})) if len(items) > 1 else None
        return httpx.Response(200, json={"BillingCurrency": "USD", "Items": items[:1], "NextPageLink": next_link,
                                         "Count": len(items[:1])})

    return httpx.MockTransport(handler)


def test_refresh_prices_follows_pages_and_keeps_linux_pay_as_you_go() -> None:
    pages = {"eastus": [
        _item("Standard_NC40ads_H100_v5", 6.98),
        _item("Standard_NC40ads_H100_v5", 7.4, product="Virtual Machines NCads H100 v5 Series Windows"),
        _item("Standard_NC40ads_H100_v5", 2.1, meter="NC40ads H100 v5 Spot"),
        _item("Standard_NC40ads_H100_v5", 1.2, meter="NC40ads H100 v5 Low Priority"),
        _item("Standard_NC24ads_A100_v4", 3.673, product="Virtual Machines NC A100 v4 Series",
              meter="NC24ads A100 v4"),
        _item("Standard_NC24ads_A100_v4", 0.5, product="Virtual Machines NC A100 v4 Series",
              meter="NC24ads A100 v4", type="DevTestConsumption"),
        _item("Standard_D4s_v5", 0.192, product="Virtual Machines Dsv5 Series", meter="D4s v5"),  # not ours
    ], "westeurope": [
        _item("Standard_NC24ads_A100_v4", 4.41, region="westeurope", product="Virtual Machines NC A100 v4 Series",
              meter="NC24ads A100 v4"),
        # An older price: the latest effectiveStartDate wins.
        _item("Standard_NC24ads_A100_v4", 4.0, region="westeurope", product="Virtual Machines NC A100 v4 Series",
              meter="NC24ads A100 v4", effectiveStartDate="2022-01-01T00:00:00Z"),
    ]}
    seen: list[str] = []
    with httpx.Client(transport=_retail_transport(pages, seen)) as http:
        results = refresh_prices(["eastus", "westeurope"], {"azure_http": http, "today": TODAY})
    # The second page of each query was asked for, by its NextPageLink.
    assert any(parse_qs(urlparse(url).query).get("$skip") == ["1000"] for url in seen)
    rows = {(r.region, r.sku): r for result in results for r in result.rows}
    assert set(rows) == {("eastus", "Standard_NC40ads_H100_v5"), ("eastus", "Standard_NC24ads_A100_v4"),
                         ("westeurope", "Standard_NC24ads_A100_v4")}
    h100 = rows[("eastus", "Standard_NC40ads_H100_v5")]
    assert (h100.provider, h100.service, h100.usd, h100.unit, h100.as_of, h100.confidence) == (
        "azure", "virtual-machines", 6.98, "hour", "2026-12-08", "list")
    assert h100.source.startswith(RETAIL_PRICES) and "meter-Standard_NC40ads_H100_v5-NC40ads-H100-v5" in h100.source
    assert "effectiveStartDate 2024-05-01T00:00:00Z" in h100.source
    assert rows[("eastus", "Standard_NC24ads_A100_v4")].usd == 3.673
    assert rows[("westeurope", "Standard_NC24ads_A100_v4")].usd == 4.41
    warnings = [w for result in results for w in result.warnings]
    assert any("no Linux pay-as-you-go price for" in w and "Standard_ND96isr_H100_v5" in w for w in warnings)


def test_refresh_prices_reports_errors_as_warnings() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="unavailable")

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        [result] = refresh_prices(["eastus"], {"azure_http": http, "today": TODAY})
    assert not result.rows and any("HTTP 503" in w for w in result.warnings)
    assert refresh_prices([], {}) == []
    [skipped] = refresh_prices(["eastus"], {"azure_retail": "none"})
    assert not skipped.rows and skipped.warnings


def test_skip_reasons() -> None:
    assert skip_reason(_item("Standard_NC6s_v3", 3.06)) is None
    assert skip_reason(_item("Standard_NC6s_v3", 0)) == "price 0"
    assert skip_reason(_item("Standard_NC6s_v3", 3.06, unitOfMeasure="1/Month")) == "unit '1/Month'"
    assert skip_reason(_item("Standard_NC6s_v3", 3.06, product="Virtual Machines NCSv3 Series Windows")) == "Windows"


# -------------------------------------------------------------------------------------------- quota reader

SUB = "00000000-1111-2222-3333-444444444444"


def _need(key: str, at_update: float, region: str = "eastus", project: str | None = SUB) -> QuotaNeed:
    row = quota_table._load(QUOTAS)[key]
    return QuotaNeed(key, "azure", row.service, row.quota_name, row.quota_code, None, row.unit, region,
                     at_update, at_update, at_update, ("endpoint",), project, row.source)


def _usage(value: str, current: float, limit: float, kind: str = "vmFamily", id_tail: str = "",
           localized: str | None = None) -> dict[str, Any]:
    return {"id": f"/subscriptions/{SUB}/providers/Microsoft.MachineLearningServices/locations/eastus/usages{id_tail}",
            "type": f"Microsoft.MachineLearningServices/{kind}/usages", "currentValue": current, "limit": limit,
            "name": {"value": value, "localizedValue": localized or value}, "unit": "Count"}


USAGES = {"value": [
    _usage("Clusters", 3, 500, "totalCores"),
    _usage("Total Cluster Dedicated Regional vCPUs", 24, 100, "dedicatedCores"),
    # The family rows as the API keys them, with the display name beside.
    _usage("standardNCADSA100v4Family", 24, 48, localized="Standard NCADSA100v4 Family Cluster Dedicated vCPUs"),
    _usage("standardNCASv3_T4Family", 0, 8, localized="Standard NCASv3_T4 Family Cluster Dedicated vCPUs"),
    _usage("standardNDv5H100Family", 0, -1),
    # A workspace's share of the same family: not the subscription's quota.
    {**_usage("standardNCASv3_T4Family", 0, 1000), "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
     "Microsoft.MachineLearningServices/workspaces/ws/usages/standardNCASv3_T4Family",
     "type": "Microsoft.MachineLearningServices/workspaces/usages"},
]}


def _arm_transport(calls: list[httpx.Request], status: int = 200, body: Any = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        assert request.headers["Authorization"] == "Bearer tok"
        assert request.url.path == (f"/subscriptions/{SUB}/providers/Microsoft.MachineLearningServices/locations/"
                                    f"{request.url.path.split('/locations/')[1].split('/')[0]}/usages")
        if "page2" in str(request.url):
            return httpx.Response(200, json={"value": [_usage("standardNVADSA10v5Family", 36, 36)]})
        page: dict[str, Any] = dict(USAGES if body is None else body)
        if body is None:
            page["nextLink"] = f"https://management.azure.com{request.url.path}?api-version=2025-09-01&page2=1"
        return httpx.Response(status, json=page)

    return httpx.MockTransport(handler)


def test_quota_reader_ok_short_and_unknown() -> None:
    needs = [
        _need("azure-ml-cores:standardNCADSA100v4Family", 24),   # 24 free of 48: enough
        _need("azure-ml-cores:standardNCASv3_T4Family", 16),     # 8 free: short by 8 (the workspace row ignored)
        _need("azure-ml-total-cores", 76),                       # 76 free of 100
        _need("azure-ml-cores:standardNDv5H100Family", 192),     # -1: no limit
        _need("azure-ml-cores:standardNVADSA10v5Family", 36),    # on the second page: 0 free
        _need("azure-ml-endpoints", 1),                          # not reported
        _need("azure-ml-cores:standardNCSv3Family", 6),          # not listed
    ]
    calls: list[httpx.Request] = []
    with httpx.Client(transport=_arm_transport(calls)) as http:
        statuses = QuotaReader().check(needs, AzureClient(http, "tok"))
    by = {s.need.need: s for s in statuses}
    assert [s.need for s in statuses] == needs
    a100 = by["azure-ml-cores:standardNCADSA100v4Family"]
    assert (a100.state, a100.limit, a100.usage, a100.short_by) == ("enough", 48, 24, 0)
    t4 = by["azure-ml-cores:standardNCASv3_T4Family"]
    assert (t4.state, t4.limit, t4.short_by) == ("short", 8, 8)
    assert "ml.azure.com/quota" in t4.increase and "request 16" in t4.increase
    assert by["azure-ml-total-cores"].state == "enough"
    h100 = by["azure-ml-cores:standardNDv5H100Family"]
    assert h100.state == "enough" and h100.limit is not None and math.isinf(h100.limit)
    assert by["azure-ml-cores:standardNVADSA10v5Family"].state == "short"
    for key in ("azure-ml-endpoints", "azure-ml-cores:standardNCSv3Family"):
        assert by[key].state == "unknown" and "reports no" in by[key].note, key
    # One listing (two pages) for every need in the region.
    assert len(calls) == 2


def test_quota_reader_failures_are_unknown() -> None:
    need = _need("azure-ml-cores:standardNCADSA100v4Family", 24)
    calls: list[httpx.Request] = []
    denied = {"error": {"code": "AuthorizationFailed", "message": "no read on usages"}}
    with httpx.Client(transport=_arm_transport(calls, 403, denied)) as http:
        [status] = QuotaReader().check([need], AzureClient(http, "tok"))
    assert status.state == "unknown" and "HTTP 403 AuthorizationFailed" in status.note

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    with httpx.Client(transport=httpx.MockTransport(boom)) as http:
        [status] = QuotaReader().check([need], AzureClient(http, "tok"))
    assert status.state == "unknown" and "ConnectError" in status.note

    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>"))) as http:
        [status] = QuotaReader().check([need], AzureClient(http, "tok"))
    assert status.state == "unknown" and "not JSON" in status.note


def test_quota_reader_credentials_and_subscription_from_the_cli() -> None:
    need = _need("azure-ml-cores:standardNCADSA100v4Family", 24, project=None)
    asked: list[list[str]] = []

    def no_cli(argv: Any) -> str | None:
        asked.append(list(argv))
        return None

    [status] = QuotaReader(run_cli=no_cli).check([need])
    assert status.state == "unknown" and "az login" in status.note
    assert asked == [["az", "account", "get-access-token", "--resource", "https://management.azure.com/",
                      "--query", "accessToken", "-o", "tsv"]]

    def cli(argv: Any) -> str | None:
        return {"get-access-token": "tok", "show": SUB}[argv[2]]

    calls: list[httpx.Request] = []
    with httpx.Client(transport=_arm_transport(calls)) as http:
        [status] = QuotaReader(run_cli=cli).check([need], AzureClient(http))
    assert status.state == "enough" and calls

    # No subscription anywhere: unknown, nothing requested.
    with httpx.Client(transport=_arm_transport(calls := [])) as http:
        [status] = QuotaReader(run_cli=lambda argv: "tok" if argv[2] == "get-access-token" else None).check(
            [need], AzureClient(http))
    assert status.state == "unknown" and "no subscription" in status.note and not calls


def test_recorded_usages_are_json() -> None:
    # The fixture above is what the API returns: a JSON object with a value list.
    assert json.loads(json.dumps(USAGES))["value"][0]["name"]["value"] == "Clusters"
