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

from components.catalog import api_prices
from components.catalog.pricing import DATA_DIR, PriceRow, load
from components.catalog.pricing.hf import PRICING_URL, parse_pricing, read_pricing
from components.catalog.pricing.refresh import (
    AWS_BASE,
    DEFAULT_REGIONS,
    SPOT_URL,
    gcp_api_fetch,
    gcp_dir_fetch,
    merge_and_write,
    refresh_aws,
    refresh_gcp,
    refresh_spot,
    split_regions,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# Wide when piped: a cropped source column would hide where a number comes from.
out = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)


@app.command()
def refresh(
    ctx: typer.Context,
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
    aws_spot: Annotated[str | None, typer.Option(
        help=f"EC2 Spot prices: {SPOT_URL} (the JSON the EC2 Spot pricing page loads, no credentials) or a recorded "
             "copy; 'none' skips them. Default: that URL with an --aws-offers URL, DIR/spot.json with a directory.")
    ] = None,
    api_prices_source: Annotated[str | None, typer.Option(
        "--api-prices", metavar="SOURCE",
        help="Also regenerate the pay-per-token API price snapshot from LiteLLM's price map: a path to a "
             "model_prices_and_context_window*.json, its URL, or 'default' (the litellm package `make litellm` "
             "installs in .tools/litellm, else the upstream file on GitHub). Given without --aws-offers, "
             "--gcp-skus, --gcp-api-key or --regions, only the snapshot is refreshed.")] = None,
    api_prices_out: Annotated[Path, typer.Option(
        help="The API price snapshot to write.")] = api_prices.SNAPSHOT,
    hf_pricing: Annotated[str | None, typer.Option(
        "--hf-pricing", metavar="SOURCE",
        help="Also re-read Hugging Face Inference Endpoints prices from their published page: its Markdown's URL "
             "(default: the documentation's support/pricing.md on GitHub) or a local copy. Given without the "
             "cloud options, only those rows are refreshed.")] = None,
) -> None:
    """Re-read prices from the AWS Price List, the GCP Cloud Billing Catalog and Hugging Face's published table,
    and update the price files."""
    if api_prices_source is not None or hf_pricing is not None:
        if api_prices_source is not None:
            refresh_api_prices(api_prices_source, api_prices_out)
        if hf_pricing is not None:
            refresh_hf_prices(PRICING_URL if hf_pricing == "default" else hf_pricing, out_dir)
        cloud_options = ("aws_offers", "gcp_api_key", "gcp_skus", "regions")
        given = [getattr(ctx.get_parameter_source(name), "name", None) for name in cloud_options]
        if "COMMANDLINE" not in given:
            return
    aws_regions, gcp_regions = split_regions([r.strip() for r in regions.split(",") if r.strip()])
    results = [refresh_aws(aws_offers, aws_regions)] if aws_regions else []
    if aws_regions and aws_spot != "none":
        spot = aws_spot or (SPOT_URL if aws_offers.startswith(("https://", "http://")) else
                            str(Path(aws_offers) / "spot.json"))
        if spot.startswith(("https://", "http://")) or Path(spot).exists():
            results.append(refresh_spot(spot, aws_regions, datetime.date.today()))
        else:
            err.print(f"EC2 Spot skipped: no {escape(spot)} (give --aws-spot).")
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
    table = Table("provider", "service", "region", "sku", "usd", "unit", "as of", "confidence", "source")
    for r in rows:
        table.add_row(r.provider, r.service, r.region, r.sku, str(r.usd), r.unit, r.as_of, r.confidence,
                      escape(r.source))
    out.print(table)
    out.print(f"{len(rows)} rows")


def refresh_hf_prices(source: str, out_dir: Path) -> None:
    """`refresh --hf-pricing`: Hugging Face's published GPU instance rates -> data/huggingface.csv."""
    try:
        rows = parse_pricing(read_pricing(source), source, datetime.date.today().isoformat())
    except OSError as e:
        err.print(f"Hugging Face prices not refreshed: {escape(str(e))}")
        raise typer.Exit(1) from e
    if not rows:
        err.print(f"Hugging Face prices not refreshed: no GPU Instances table in {escape(source)}")
        raise typer.Exit(1)
    merge_and_write(rows, out_dir)
    out.print(f"Wrote {out_dir}/huggingface.csv: {len(rows)} GPU instance rates from {escape(source)}")


def refresh_api_prices(source: str, path: Path) -> None:
    """`refresh --api-prices`: LiteLLM's price map -> the snapshot cost previews compare with."""
    try:
        snap = api_prices.refresh(source, path)
    except (OSError, ValueError) as e:  # a missing file, an unreachable URL, a file that is not a price map
        err.print(f"API prices not refreshed: {escape(str(e))}")
        raise typer.Exit(1) from e
    meta = snap["meta"]
    out.print(f"Wrote {path}: {meta['models']} API models from {escape(meta['source'])} "
              f"(sha256 {meta['sha256'][:12]}, {meta['generated']})")


@app.command("apis")
def list_apis(
    pattern: Annotated[str | None, typer.Argument(help="Part of a name (case-insensitive), e.g. haiku.")] = None,
) -> None:
    """Print the pay-per-token API prices `usage.compareWith` can name (LiteLLM's price map, snapshot)."""
    names = [n for n in api_prices.api_names() if pattern is None or pattern.lower() in n.lower()]
    if not names:
        err.print(api_prices.unknown_api_message(pattern or ""))
        raise typer.Exit(1)
    table = Table("api (compareWith)", "provider", "model", "usd/1M in", "usd/1M out")
    for name in names:
        price = api_prices.api_price(name)
        assert price is not None
        default = " (default)" if name in api_prices.DEFAULT_COMPARE_WITH else ""
        table.add_row(escape(name) + default, price.provider, escape(price.model),
                      f"{price.usd_per_1m_input:g}", f"{price.usd_per_1m_output:g}")
    out.print(table)
    meta = api_prices.snapshot()["meta"]
    out.print(f"{len(names)} of {meta['models']} models; {escape(api_prices.source_label(meta))}, {meta['generated']}")
