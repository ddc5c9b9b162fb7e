"""`selfhost size`, `selfhost check`, the policy pack, the in-program estimate and the cost diff, end to end.
Every command's exit codes, the budget's among them: tests/test_exit_codes.py."""

from __future__ import annotations

import copy
import io
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.catalog.pricing import lookup
from components.cost import to_json
from selfhost.cost_report import diff, markdown, price_preview

from .conftest import ROOT

SELFHOST = str(Path(sys.executable).with_name("selfhost"))


def selfhost(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([SELFHOST, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def project_with(tmp_path: Path, stack: str, change) -> Path:
    """A copy of the project whose stack file `stack` is changed by `change(config_dict)`."""
    (tmp_path / "stacks").mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "components").symlink_to(ROOT / "components")
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    change(doc["config"])
    (tmp_path / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def test_size_ranks_feasible_hosts_cheapest_first():
    run = selfhost("size", "Mistral-7B-Instruct-v0.3", "--context", "8192", "--concurrency", "4", "--json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["serviceLevel"] == {"minTokensPerSecondPerStream": 10, "maxTimeToFirstTokenSeconds": 2.0}
    rows = doc["options"]
    assert rows and all(r["marginGib"] >= 0 for r in rows)
    priced = [r["atServiceLevel"]["usdPer1mTokens"] for r in rows if r["atServiceLevel"]["usdPer1mTokens"] is not None]
    assert priced == sorted(priced) and len(priced) >= 2
    # Unknown prices come last, never as $0.
    assert all(r["atServiceLevel"]["usdPer1mTokens"] is None for r in rows[len(priced):])
    g5 = next(r for r in rows if r["host"] == "ml.g5.2xlarge")
    # $1.515/h over (3.35 req/s x 700 tokens x 3600 s) = $0.18 per 1M tokens at the service level, fully used.
    sl, sat = g5["atServiceLevel"], g5["saturation"]
    assert sl["usdPer1mTokens"] == pytest.approx(1.515 / (sl["requestsPerSecond"] * 3600 * 700) * 1e6)
    assert sl["requestsPerSecond"] == pytest.approx(3.35, abs=0.01)
    assert sl["tokensPerSecondPerStream"] >= 10 and sat["tokensPerSecondPerStream"] < 10
    assert sat["outputTokensPerSecond"] > sl["outputTokensPerSecond"] and sat["usdPer1mTokens"] < sl["usdPer1mTokens"]
    # A stricter service level plans fewer requests at once on the same host.
    strict = json.loads(selfhost("size", "Mistral-7B-Instruct-v0.3", "--context", "8192", "--concurrency", "4",
                                 "--min-tokens-per-second", "20", "--json").stdout)["options"]
    g5_strict = next(r for r in strict if r["host"] == "ml.g5.2xlarge")
    assert g5_strict["atServiceLevel"]["concurrency"] < sl["concurrency"]
    # A 24 GiB card cannot hold 4 sequences of 32k tokens beside the weights: not listed.
    tight = json.loads(selfhost("size", "Mistral-7B-Instruct-v0.3", "--context", "32768", "--concurrency", "4",
                                "--json").stdout)["options"]
    assert "ml.g5.2xlarge" not in {r["host"] for r in tight}


@pytest.mark.parametrize("cloud", ["kubernetes", "onprem"])
def test_size_on_your_own_cluster_and_errors(cloud):
    run = selfhost("size", "Llama-3.1-8B", "--cloud", cloud, "--gpu-hour-usd", "0.9", "--node-hour-usd", "0.4",
                   "--json")
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)["options"]
    one_l4 = next(r for r in rows if r["host"] == "1 x L4")
    assert one_l4["usdPerHour"] == pytest.approx(1.3) and one_l4["cloud"] == "kubernetes"
    assert one_l4["priceSource"].startswith("configured $/GPU-hour and $/node-hour")
    # Without the owner's rate there is nothing to price it at: said, not an empty table.
    unpriced = selfhost("size", "Llama-3.1-8B", "--cloud", cloud)
    assert unpriced.returncode == 1 and "--cloud kubernetes is priced at the owner's rates" in unpriced.stderr
    bad = selfhost("size", "no-such-model")
    assert bad.returncode == 1 and "not in the catalog" in bad.stderr
    assert "ambiguous" in selfhost("size", "Qwen2.5").stderr


def test_size_prices_each_platform_in_its_region_and_lists_the_platforms():
    def regions(*args):
        run = selfhost("size", "Llama-3.1-8B", "--cloud", "aws", *args, "--json")
        assert run.returncode == 0, run.stderr
        return {r["region"] for r in json.loads(run.stdout)["options"]}

    assert regions() == {"us-east-1"} and regions("--region", "aws=eu-west-1") == {"eu-west-1"}
    default = {r["cloud"] for r in json.loads(selfhost("size", "Llama-3.1-8B", "--json").stdout)["options"]}
    # Every platform with list prices; not the owner-rated cluster.
    assert default == {"aws", "gcp", "azure", "huggingface"}
    for args, said in ((("--cloud", "oracle"),
                        "--cloud 'oracle': allowed: aws, gcp, azure, kubernetes, huggingface, onprem"),
                       (("--region", "mars=1"), "--region 'mars=1': PLATFORM=REGION"),
                       (("--region", "aws"), "--region 'aws': PLATFORM=REGION")):
        run = selfhost("size", "Llama-3.1-8B", *args)
        assert run.returncode == 1 and said in run.stderr, run.stderr


def test_check_passes_on_every_stack():
    run = selfhost("check", "--all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("compliant") == len(list((ROOT / "stacks").glob("Pulumi.*.yaml")))


def test_cost_estimate_is_a_stack_output(previews):
    """The program prices what it declares (values known at declaration) so `pulumi preview` shows it: the same
    function and serializer as `selfhost cost`, so its output is the headline of the cost report, figure for
    figure, though it priced its own capture and `cost` the previewed graph."""
    for name, p in previews.items():
        estimate = p.outputs["costEstimate"]
        graph = price_preview(p.to_json(), lookup)
        report = to_json(name, graph)
        assert estimate == to_json(None, graph, full=False) == {k: report[k] for k in estimate}, name
        assert estimate["totals"]["min"] == pytest.approx(graph.total()[0], abs=0.01), name
        assert estimate["unpricedItems"] == graph.unpriced_count() == 0, name
        assert estimate["complete"] is True and estimate["total"] == f"${graph.total()[1]:,.2f}", name
    prod = previews["aws-prod"].outputs["costEstimate"]
    assert prod["budget"] == {"monthlyUsd": 8000, "withinBudget": True}
    assert set(prod) == {"hoursPerMonth", "totals", "total", "complete", "unpricedItems", "usdPer1mTokens", "budget"}
    assert previews["aws-prod"].outputs["costInputs"]["usage"]["requestsPerDay"] == 10_000


def test_policy_pack_runs_offline_on_the_graph(previews, monkeypatch):
    """policy/__main__.py with its real pulumi_policy types, fed the previewed resources."""
    import pulumi_policy
    from pulumi_policy.policy import PolicyResource, PolicyResourceOptions

    packs = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kw: packs.append(kw))
    runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="__main__")
    policies = {p.name: p for p in packs[0]["policies"]}
    from components.policies import BY_ID

    assert set(policies) == set(BY_ID)
    assert {p.name for p in policies.values() if p.enforcement_level == pulumi_policy.EnforcementLevel.ADVISORY} \
        == {r.id for r in BY_ID.values() if not r.mandatory}

    def args_for(graph: dict, budget: float | None) -> pulumi_policy.StackValidationArgs:
        opts = PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                     custom_timeouts=None, additional_secret_outputs=[])
        by_urn = {}
        resources = []
        for r in graph["resources"]:
            pr = PolicyResource(r["type"], r["inputs"], r["urn"], r["name"], opts, None, by_urn.get(r["parent"]), [],
                                {})
            by_urn[r["urn"]] = pr
            resources.append(pr)
        outputs = {**graph["outputs"], "costInputs": {**graph["outputs"]["costInputs"], "budgetMonthlyUsd": budget}}
        resources.append(PolicyResource("pulumi:pulumi:Stack", outputs, "urn:stack", "stack", opts, None, None, [], {}))
        return pulumi_policy.StackValidationArgs(resources)

    graph = previews["aws-prod"].to_json()
    graph["resources"].sort(key=lambda r: r["urn"].count("$"))  # parents before children
    for budget, violations in ((8000, 0), (500, 1)):
        reported = []
        policies["monthly-budget"].validate(args_for(graph, budget),
                                            lambda msg, urn=None, found=reported: found.append(msg))
        assert len(reported) == violations, reported
    reported = []
    for name, policy in policies.items():
        policy.validate(args_for(graph, 8000), lambda msg, urn=None, rule=name: reported.append(f"{rule}: {msg}"))
    assert reported == []
    # The same runner reports what a rule finds: a wildcard action in the execution role.
    graph = copy.deepcopy(graph)  # the session's previews are shared: change a copy
    role = next(r for r in graph["resources"] if r["type"] == "aws:iam/rolePolicy:RolePolicy")
    role["inputs"]["policy"] = json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    policies["aws-iam-no-wildcard-actions"].validate(args_for(graph, 8000), lambda msg, urn=None: reported.append(msg))
    assert len(reported) == 1 and "wildcard action s3:*" in reported[0] and "Fix:" in reported[0]


def test_an_unpriced_item_makes_every_total_a_lower_bound_and_strict_fail(tmp_path):
    """aws-dev moved to a region the price table has no rows for (ap-south-1): every format says "at least",
    none presents the partial sum as the total (nor a budget it is under as kept), and --strict (for CI) exits 5
    naming what is unpriced."""
    project = project_with(tmp_path, "aws-dev", lambda c: c.update({"aws:region": "ap-south-1"}))
    table = selfhost("cost", "aws-dev", "--project", str(project))
    assert table.returncode == 0, table.stderr
    assert "at least $" in table.stdout and "items unpriced" in table.stdout
    assert "Budget $1,500/month: not known (at least $" in table.stdout
    doc = json.loads(selfhost("cost", "aws-dev", "--format", "json", "--project", str(project)).stdout)
    n = doc["unpricedItems"]
    assert n > 0 and doc["complete"] is False
    assert doc["total"] == f"at least ${doc['totals']['expected']:,.2f} + {n} items unpriced"
    assert doc["usdPer1mTokens"] is None and doc["chart"] is None  # no per-token figure from a partial total
    assert doc["budget"] == {"monthlyUsd": 1500, "withinBudget": None}  # under it by a lower bound: not known
    md = selfhost("cost", "aws-dev", "--format", "markdown", "--project", str(project)).stdout
    assert f"+ {n} items unpriced |" in md and "**Incomplete:" in md
    assert "not known whether the expected cost (at least $" in md and "within budget" not in md
    preview = json.loads(selfhost("preview", "aws-dev", "--json", "--project", str(project)).stdout)
    estimate = preview["outputs"]["costEstimate"]
    assert {k: doc[k] for k in estimate} == estimate  # the program's headline is the report's
    assert estimate["complete"] is False and estimate["total"].startswith("at least $")
    strict = selfhost("cost", "aws-dev", "--strict", "--project", str(project))
    assert strict.returncode == 5
    assert "unpriced" in strict.stderr
    assert "no price for aws/sagemaker-hosting/ml.g5.2xlarge in ap-south-1" in strict.stderr


def test_every_shipped_stack_is_fully_priced():
    run = selfhost("cost", "--all", "--strict", "--format", "json")
    assert run.returncode == 0, run.stderr
    docs = json.loads(run.stdout)["stacks"]
    assert docs and all(d["complete"] and d["unpricedItems"] == 0 for d in docs)
    assert all(d["usdPer1mTokens"] is not None for d in docs)


def _diff_reports(previews) -> tuple[dict, dict]:
    """aws-dev's report as a base and a head that adds one item, removes another, loses the price of a third
    and changes the price of a fourth."""
    base = to_json("aws-dev", price_preview(previews["aws-dev"].to_json(), lookup))
    head = copy.deepcopy(base)
    items = head["items"]
    added = {**items[0], "resource": "aws-dev-new", "monthlyUsd": {"min": 5.0, "expected": 5.0, "max": 5.0}}
    one_each = list({i["resource"]: i for i in reversed(items) if i["monthlyUsd"]}.values())
    removed, unpriced, repriced = one_each[:3]  # three resources, each with one priced item here
    items.remove(removed)
    unpriced.update(unitUsd=None, monthlyUsd=None)
    repriced["monthlyUsd"] = {k: v + 1 for k, v in repriced["monthlyUsd"].items()}
    items.append(added)
    head.update(unpricedItems=1, total="at least ...")
    return base, head


def test_cost_diff_says_none_for_what_does_not_exist_and_unknown_for_no_price(previews, monkeypatch):
    """`cost --base`: the side of an added or removed item where it does not exist is "none", in the text and the
    markdown alike; "unknown" is only ever a missing price (and the change it leaves unknown)."""
    from rich.console import Console

    import selfhost.cli as cli

    base, head = _diff_reports(previews)
    rows = {r["change"] + ":" + r["resource"]: r for r in diff(base, head)}
    removed = next(k for k in rows if k.startswith("removed:"))
    unpriced = next(k for k, r in rows.items() if r["change"] == "changed" and r["afterUsd"] is None)
    assert rows["added:aws-dev-new"]["beforeUsd"] is None and rows["added:aws-dev-new"]["deltaUsd"] == 5.0
    assert rows[removed]["afterUsd"] is None and rows[removed]["deltaUsd"] < 0
    assert rows[unpriced]["deltaUsd"] is None

    md = {line.split(" | ")[1].strip("`"): line for line in markdown(head, base, "origin/main").splitlines()
          if line.startswith(("| added", "| removed", "| changed"))}
    assert md["aws-dev-new"].endswith("| none | $5.00 | +$5.00 |")
    assert "| none |" in md[rows[removed]["resource"]] and "unknown" not in md[rows[removed]["resource"]]
    assert md[rows[unpriced]["resource"]].endswith("| unknown | unknown |")
    assert {line for line in md.values() if "none" in line} == {md["aws-dev-new"], md[rows[removed]["resource"]]}

    text = io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=text, width=240, highlight=False))
    cli._print_cost(head, base, "origin/main")
    lines = {line.split(":")[0].split()[-1]: line for line in text.getvalue().splitlines()
             if line.startswith(("  added", "  removed", "  changed"))}
    assert lines["aws-dev-new"].endswith("none -> $5.00 (+$5.00)")
    assert " -> none (-$" in lines[rows[removed]["resource"]]
    assert lines[rows[unpriced]["resource"]].endswith(" -> unknown (unknown)")
    assert {line for line in lines.values() if "none" in line} == {lines["aws-dev-new"],
                                                                   lines[rows[removed]["resource"]]}
    # The totals' change is not known while the head's total is a lower bound.
    assert "| **Change** | unknown | unknown | unknown |" in markdown(head, base, "origin/main")


def test_size_takes_lora_slots_which_take_memory_before_the_kv_cache():
    args = ("size", "Qwen2.5-7B-Instruct", "--context", "32768", "--concurrency", "3", "--cloud", "aws", "--json")
    plain = {(o["target"], o["host"]): o for o in json.loads(selfhost(*args).stdout)["options"]}
    run = selfhost(*args, "--lora-slots", "8", "--lora-rank", "50")
    with_adapters = {(o["target"], o["host"]): o for o in json.loads(run.stdout)["options"]}
    # 8 slots at vLLM's rank 64 (the setting that holds 50): 1.34 GiB more on every host, and the 24 GB hosts that
    # held the base model at this context (a 20.9 GiB need) no longer do.
    shared = plain.keys() & with_adapters.keys()
    assert shared and all(round(with_adapters[k]["requiredGib"] - plain[k]["requiredGib"], 2) == 1.34 for k in shared)
    assert any(o["availableGib"] < 23 for o in plain.values())
    assert not any(o["availableGib"] < 23 for o in with_adapters.values())
    bad = selfhost("size", "Qwen2.5-7B-Instruct", "--lora-slots", "2", "--lora-rank", "1000")
    assert bad.returncode != 0 and "rank 1..512" in bad.stderr
