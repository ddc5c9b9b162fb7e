"""`selfhost prices`: the price table behind cost previews, and its refresh from the official sources."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from components.catalog.pricing import DATA_DIR, PriceRow, load
from components.catalog.pricing.refresh import (
    AWS_BASE,
    DEFAULT_REGIONS,
    gcp_api_fetch,
    gcp_dir_fetch,
    merge_and_write,
    refresh_aws,
    refresh_gcp,
    split_regions,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# Wide when piped: a cropped source column would hide where a number comes from.
out = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)


@app.command()
def refresh(
    aws_offers: Annotated[str, typer.Option(
        help="AWS Price List bulk API base URL, or a directory with the same layout "
             "(offers/v1.0/aws/{Offer}/current/{region}/index.json).")] = AWS_BASE,
    gcp_api_key: Annotated[str | None, typer.Option(
        envvar="GCP_BILLING_API_KEY", help="API key for the Cloud Billing Catalog API.")] = None,
    gcp_skus: Annotated[Path | None, typer.Option(
        help="Directory of recorded Cloud Billing pages (v1/services.json, v1/services/{id}/skus[@token].json), "
             "used instead of the API.")] = None,
    regions: Annotated[str, typer.Option(help="Comma-separated AWS and GCP regions.")] = ",".join(DEFAULT_REGIONS),
    out_dir: Annotated[Path, typer.Option("--out", help="Directory of the price files to update.")] = DATA_DIR,
) -> None:
    """Re-read prices from the AWS Price List and the GCP Cloud Billing Catalog and update the price files."""
    aws_regions, gcp_regions = split_regions([r.strip() for r in regions.split(",") if r.strip()])
    results = [refresh_aws(aws_offers, aws_regions)] if aws_regions else []
    if gcp_regions:
        if gcp_skus is not None:
            results.append(refresh_gcp(gcp_dir_fetch(gcp_skus), gcp_regions, datetime.date.today()))
        elif gcp_api_key:
            results.append(refresh_gcp(gcp_api_fetch(gcp_api_key), gcp_regions, datetime.date.today()))
        else:
            err.print("GCP skipped: no --gcp-api-key (or GCP_BILLING_API_KEY) and no --gcp-skus.")
    for result in results:
        for warning in result.warnings:
            err.print(f"warning: {escape(warning)}")
    rows = [row for result in results for row in result.rows]
    if not rows:
        err.print("No price could be read: nothing written.")
        raise typer.Exit(1)
    totals = merge_and_write(rows, out_dir)
    summary = Table("provider", "service", "region", "rows refreshed")
    counts: dict[tuple[str, str, str], int] = {}
    for row in rows:
        counts[(row.provider, row.service, row.region)] = counts.get((row.provider, row.service, row.region), 0) + 1
    for (provider, service, region), n in sorted(counts.items()):
        summary.add_row(provider, service, region, str(n))
    out.print(summary)
    out.print(f"Wrote {out_dir}: " + ", ".join(f"{p} {n} rows" for p, n in totals.items()))


@app.command("list")
def list_prices(
    provider: Annotated[str | None, typer.Option(help="aws or gcp.")] = None,
    region: Annotated[str | None, typer.Option()] = None,
    service: Annotated[str | None, typer.Option(help="e.g. ec2, sagemaker-hosting, gce-gpu.")] = None,
    data_dir: Annotated[Path, typer.Option(hidden=True)] = DATA_DIR,
) -> None:
    """Print the price rows, with their source and as-of date."""
    rows: list[PriceRow] = sorted(
        (r for r in load(data_dir).values()
         if (provider is None or r.provider == provider)
         and (region is None or r.region == region)
         and (service is None or r.service == service)),
        key=lambda r: (r.provider, r.service, r.region, r.sku))
    if not rows:
        err.print("No price rows match.")
        raise typer.Exit(1)
    table = Table("provider", "service", "region", "sku", "usd", "unit", "as of", "source")
    for r in rows:
        table.add_row(r.provider, r.service, r.region, r.sku, str(r.usd), r.unit, r.as_of, escape(r.source))
    out.print(table)
    out.print(f"{len(rows)} rows")
