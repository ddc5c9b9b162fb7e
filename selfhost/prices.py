"""`selfhost prices`: the price table behind cost previews, and its refresh from the official sources."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from components.catalog import api_prices
from components.catalog.pricing import DATA_DIR, PriceRow, load
from components.catalog.pricing.refresh import merge_and_write

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# Wide when piped: a cropped source column would hide where a number comes from.
out = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)

# The refresh command's parameters that are not a platform's source (Platform.price_sources): the rest are handed
# to every platform's refresh as its `options`.
_NOT_SOURCES = ("regions", "out_dir", "api_prices_source", "api_prices_out", "sources")


@app.command()
def refresh(
    ctx: typer.Context,
    aws_offers: Annotated[str | None, typer.Option(
        help="AWS Price List bulk API base URL (default: https://pricing.us-east-1.amazonaws.com), or a directory "
             "with the same layout (offers/v1.0/aws/{Offer}/current/{region}/index.json).")] = None,
    gcp_api_key: Annotated[str | None, typer.Option(
        envvar="GCP_BILLING_API_KEY", help="API key for the Cloud Billing Catalog API.")] = None,
    gcp_skus: Annotated[Path | None, typer.Option(
        help="Directory of recorded Cloud Billing pages (v1/services.json, v1/services/{id}/skus[@token].json), "
             "used instead of the API.")] = None,
    regions: Annotated[str | None, typer.Option(
        help="Comma-separated regions to refresh, each PLATFORM=REGION (aws=ap-south-1) or a region one "
             "platform's price rows cover (us-east-1). Refreshed: the platforms named here and those whose source "
             "options are given (in the regions their rows cover unless named here); with neither, every "
             "platform.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory of the price files to update.")] = DATA_DIR,
    aws_spot: Annotated[str | None, typer.Option(
        help="EC2 Spot prices: https://website.spot.ec2.aws.a2z.com/spot.json (the JSON the EC2 Spot pricing page "
             "loads, no credentials) or a recorded copy; 'none' skips them. Default: that URL with an --aws-offers "
             "URL, DIR/spot.json with a directory.")
    ] = None,
    api_prices_source: Annotated[str | None, typer.Option(
        "--api-prices", metavar="SOURCE",
        help="Also regenerate the pay-per-token API price snapshot from LiteLLM's price map: a path to a "
             "model_prices_and_context_window*.json, its URL, or 'default' (the litellm package `make litellm` "
             "installs in .tools/litellm, else the upstream file on GitHub). Given without --regions or a "
             "platform's source option, only the snapshot is refreshed.")] = None,
    api_prices_out: Annotated[Path, typer.Option(
        help="The API price snapshot to write.")] = api_prices.SNAPSHOT,
    hf_pricing: Annotated[str | None, typer.Option(
        "--hf-pricing", metavar="SOURCE",
        help="Hugging Face Inference Endpoints prices from their published page: its Markdown's URL ('default': "
             "the documentation's support/pricing.md on GitHub) or a local copy. Given without --regions or the "
             "other platforms' options, only those rows are refreshed.")] = None,
    sources: Annotated[list[str] | None, typer.Option(
        "--source", metavar="KEY=VALUE",
        help="A platform's source by its key (repeat): for a platform with no option of its own here, the keys its "
             "refresh reads (Platform.price_sources); giving one selects it, as the options above do.")] = None,
) -> None:
    """Re-read prices from each platform's official machine-readable sources (the AWS Price List and EC2 Spot
    feed, the GCP Cloud Billing Catalog, Hugging Face's published table) and update the price files."""
    from components.targets.registry import PLATFORMS

    if api_prices_source is not None:
        refresh_api_prices(api_prices_source, api_prices_out)
    # By name: typer's click is its own copy, whose ParameterSource is not click's.
    given = {name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"}
    extra = dict(_source(item) for item in sources or [])
    given |= set(extra)
    asked = regions_by_platform(regions, PLATFORMS) if "regions" in given and regions is not None else {}
    for platform in PLATFORMS.values():
        if platform.name not in asked and set(platform.price_sources) & given:
            asked[platform.name] = list(platform.regions)
    if not asked:
        if api_prices_source is not None:
            return
        asked = {name: list(platform.regions) for name, platform in PLATFORMS.items()}
    options: dict[str, Any] = {**{k: v for k, v in ctx.params.items() if k not in _NOT_SOURCES}, **extra}
    options["today"] = datetime.date.today()
    results = []
    for name, platform_regions in asked.items():
        got = PLATFORMS[name].refresh_prices(platform_regions, options)
        if got is None:
            if "regions" in given:
                err.print(f"{escape(PLATFORMS[name].title)}: no price refresh")
            continue
        results += got
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


def _source(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise typer.BadParameter(f"{item}: give KEY=VALUE", param_hint="--source")
    return key.strip(), value


def regions_by_platform(text: str, platforms: Mapping[str, Any]) -> dict[str, list[str]]:
    """`--regions`: platform name -> its regions asked, in the order given. An item is PLATFORM=REGION, or a region
    that exactly one platform's `regions` lists (BadParameter otherwise)."""
    asked: dict[str, list[str]] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, region = item.partition("=")
        if sep:
            name, region = name.strip(), region.strip()
            if name not in platforms:
                raise typer.BadParameter(f"{item}: no platform {name!r}; platforms: {', '.join(platforms)}",
                                         param_hint="--regions")
        else:
            region = item
            listing = [p.name for p in platforms.values() if region in p.regions]
            if len(listing) != 1:
                why = "no platform's price rows cover it" if not listing else f"{', '.join(listing)} all list it"
                raise typer.BadParameter(f"{item}: {why}: name its platform, PLATFORM={item} (platforms: "
                                         f"{', '.join(listing or platforms)})", param_hint="--regions")
            (name,) = listing
        if region not in asked.setdefault(name, []):
            asked[name].append(region)
    return asked


@app.command("list")
def list_prices(
    provider: Annotated[str | None, typer.Option(help="A platform's name (`selfhost platforms`).")] = None,
    region: Annotated[str | None, typer.Option()] = None,
    service: Annotated[str | None, typer.Option(help="e.g. ec2, sagemaker-hosting, gce-gpu.")] = None,
    data_dir: Annotated[Path, typer.Option(hidden=True)] = DATA_DIR,
) -> None:
    """Print the price rows, with their source and as-of date."""
    import components.targets.registry  # noqa: F401 - the platforms register their price files

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
