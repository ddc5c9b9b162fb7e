"""The cost engine against hand-computed values, on the graphs the real program declares.

Prices here come from a fixed table (FAKE) so every figure can be checked by hand; tests/test_pricing.py and
test_every_target_is_priced check the real catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.catalog.gpus import GPUS
from components.catalog.models import MODELS
from components.cost import HOURS_PER_MONTH, Resource, estimate, resources_from_preview
from components.schema import Usage
from components.sizing import Hardware, ServiceLevel, capacity, engine_limits
from selfhost.cost_report import diff, markdown, previews_at_ref, price_preview, to_json
from selfhost.parallel import StackFailure

from .conftest import ROOT, git, git_project

GOLDEN = Path(__file__).with_name("golden")


@dataclass(frozen=True)
class P:
    usd: float
    unit: str = "hour"
    source: str = "test table"
    as_of: str = "2026-11-29"


FAKE = {
    ("aws", "sagemaker-hosting", "ml.g5.2xlarge"): P(1.515),
    ("aws", "sagemaker-hosting", "ml.g6.xlarge"): P(1.0),
    ("aws", "nat-gateway", "hour"): P(0.045),
    ("aws", "public-ipv4", "hour"): P(0.005),
    ("aws", "vpc-endpoint", "interface-az-hour"): P(0.01),
    ("aws", "kms", "key"): P(1.0, "month"),
    ("aws", "secretsmanager", "secret"): P(0.40, "month"),
    ("aws", "cloudwatch", "alarm"): P(0.10, "month"),
    ("aws", "cloudwatch", "dashboard"): P(3.00, "month"),
    ("aws", "s3", "standard"): P(0.023, "GB-month"),
    ("aws", "fargate", "linux-x86-vcpu-hour"): P(0.04048),
    ("aws", "fargate", "linux-x86-gb-hour"): P(0.004445),
    ("aws", "elb", "application-lb-hour"): P(0.0225),
    ("gcp", "vertex-prediction", "g2-standard-12"): P(1.0),
    ("gcp", "vertex-prediction-gpu", "NVIDIA_L4"): P(0.7),
    ("gcp", "psc-endpoint", "hour"): P(0.01),
    ("gcp", "cloud-dns", "zone"): P(0.20, "month"),
    ("gcp", "secret-manager", "version"): P(0.06, "month"),
    ("gcp", "kms", "key-version"): P(0.06, "month"),
    ("gcp", "bigquery", "active-storage"): P(0.02, "GB-month"),
    ("gcp", "cloud-run", "cpu-instance"): P(0.0648),
    ("gcp", "cloud-run", "memory-instance"): P(0.00675),
}


def fake(provider, service, region, sku):
    return FAKE.get((provider, service, sku))


@pytest.fixture(scope="module")
def graphs(previews):
    return {name: p.to_json() for name, p in previews.items()}


def test_aws_prod_by_hand(graphs):
    est = price_preview(graphs["aws-prod"], fake)
    by = {(i.type.split(":")[-1], i.description.split(" ")[0]): i for i in est.items}
    # SageMaker: 1..4 x ml.g5.2xlarge at $1.515/h; the default load (10k requests/day) needs one replica.
    hosting = by[("EndpointConfiguration", "ml.g5.2xlarge")]
    assert hosting.monthly == pytest.approx((1 * 730 * 1.515, 1 * 730 * 1.515, 4 * 730 * 1.515))
    # Three NAT gateways and their three public IPv4 addresses, all month.
    nat = [i for i in est.items if i.type.endswith("NatGateway")]
    assert len(nat) == 3 and sum(i.monthly[1] for i in nat) == pytest.approx(3 * 730 * 0.045)
    assert sum(i.monthly[1] for i in est.items if i.type.endswith("Eip")) == pytest.approx(3 * 730 * 0.005)
    # Six interface endpoints in three zones.
    endpoints = [i for i in est.items if i.type.endswith("VpcEndpoint")]
    assert len(endpoints) == 6 and sum(i.monthly[1] for i in endpoints) == pytest.approx(6 * 3 * 730 * 0.01)
    # The router (router: replicas 2, maxReplicas 4) on Fargate: tasks of 1 vCPU and 2 GB (the router's default
    # resources). The default load (10,000 requests/day: 0.12 req/s) needs one task of 20 req/s, so the minimum of
    # 2 runs all month; at most 4.
    router = [i for i in est.items if i.component == "aws-prod-router"]
    vcpu = by[("Service", "1")]
    assert vcpu.component == "aws-prod-router" and vcpu.quantity == pytest.approx((2 * 730, 2 * 730, 4 * 730))
    assert vcpu.monthly == pytest.approx((2 * 730 * 0.04048, 2 * 730 * 0.04048, 4 * 730 * 0.04048))
    gb = by[("Service", "2")]
    assert gb.monthly == pytest.approx((2 * 730 * 2 * 0.004445, 2 * 730 * 2 * 0.004445, 4 * 730 * 2 * 0.004445))
    # Its internal load balancer all month (LCU-hours not estimated).
    alb = [i for i in router if i.type.endswith("LoadBalancer")]
    assert len(alb) == 1 and alb[0].monthly == pytest.approx((730 * 0.0225,) * 3)
    # Its four secrets (master key, the keys of callers support-bot and batch, the tasks' TLS key) and four alarms
    # over five metrics (no healthy host, unhealthy hosts, p95 response time, and the 5xx rate: metric math over
    # 2 metrics).
    assert sum(i.quantity[1] for i in router if i.type.endswith("Secret")) == 4
    assert sum(i.quantity[1] for i in router if i.type.endswith("MetricAlarm")) == 5
    # Its dashboard ($3 a month, as the endpoint's).
    assert sum(i.quantity[1] for i in router if i.type.endswith("Dashboard")) == 1
    assert len(router) == 2 + 1 + 4 + 4 + 1
    fargate_task = 730 * (0.04048 + 2 * 0.004445)  # one task, all month
    # Key, secrets (the Hub token's and the router's 4), alarms (the endpoint's 3, the router's 5 metrics), two
    # dashboards (the endpoint's and the router's).
    fixed = 1.0 + 5 * 0.40 + (3 + 5) * 0.10 + 2 * 3.00
    # The staged weights (7.25B parameters in bf16: 14.5 GB) and data capture at 5%: 10,000 x 30 x 0.05 requests
    # x 700 tokens x 8 bytes = 0.084 GB.
    s3 = next(i for i in est.items if i.type.endswith("s3/bucket:Bucket") and i.quantity[1])
    assert s3.quantity[1] == pytest.approx(14.5 + 0.084)
    expected = (730 * 1.515 + 3 * 730 * 0.045 + 3 * 730 * 0.005 + 6 * 3 * 730 * 0.01 + fixed + 14.584 * 0.023
                + 2 * fargate_task + 730 * 0.0225)
    assert est.total() == pytest.approx((expected, expected, expected + 3 * 730 * 1.515 + 2 * fargate_task))
    assert est.unknown == [] and est.unpriced == []


def test_expected_replicas_follow_the_load(graphs):
    prod = graphs["aws-prod"]
    mistral = MODELS["mistralai/Mistral-7B-Instruct-v0.3"]
    # One ml.g5.2xlarge (A10G: 24 GiB, 600 GB/s, 70 TFLOP/s) at the default service level (10 tokens/s per
    # stream, first token within 2 s) serves 68 requests of 500 in + 200 out at once, 3.35 requests/s.
    hw = Hardware.of_gpu(GPUS["A10G"], 1)
    found = capacity(mistral, "none", hw, 500, 200, ServiceLevel(10, 2), engine_limits(None, hw))
    assert found is not None and found.at_service_level.concurrency == 68
    one = found.at_service_level.requests_per_s
    assert one == pytest.approx(3.35, abs=0.01)
    # 600,000 requests over 12 busy hours is 13.9 req/s: 5 replicas, clamped to the maximum of 4.
    usage = {"hoursPerDay": 12, "requestsPerDay": 600_000, "inputTokensPerRequest": 500, "outputTokensPerRequest": 200}
    est = price_preview(prod, fake, usage)
    (serving,) = est.serving
    assert serving.replica_requests_per_s == pytest.approx(one)
    assert serving.needed_replicas == 5 and serving.replicas == (1, 4, 4)
    hosting = next(i for i in est.items if i.description.startswith("ml.g5.2xlarge"))
    # Half the day at the minimum (1), half at 4: 2.5 replicas on average.
    assert hosting.quantity[1] == pytest.approx(2.5 * HOURS_PER_MONTH)


def test_usd_per_million_tokens_and_api_break_even(graphs):
    est = price_preview(graphs["aws-prod"], fake)
    tokens = 10_000 * 730 / 24 * 700
    assert est.usage.tokens_per_month == pytest.approx(tokens)
    assert est.usd_per_1m_tokens == pytest.approx(est.total()[1] / tokens * 1e6)
    rows = {r["api"]: r for r in est.api_comparison()}
    # The default comparison: current small models, priced from LiteLLM's map ($ per 1M in / out).
    assert list(rows) == ["gpt-4.1-nano", "gpt-5-nano", "gemini/gemini-2.5-flash", "claude-haiku-4-5"]
    per_request = (500 * 0.05 + 200 * 0.40) / 1e6  # gpt-5-nano
    assert rows["gpt-5-nano"]["monthlyUsd"] == pytest.approx(per_request * 10_000 * 730 / 24)
    # Break-even: the stack's fixed part plus n replicas against the API bill, n = 1, 2, ...; one replica serves
    # 3.35 req/s = 289,700 requests/day, so the load where costs meet must fit the replicas it is priced with.
    (s,) = est.serving
    rest = est.total()[0] - 730 * 1.515
    haiku = (500 * 1.0 + 200 * 5.0) / 1e6  # claude-haiku-4-5
    assert (rest + 730 * 1.515) / (haiku * 730 / 24) <= s.replica_requests_per_s * 86400
    assert rows["claude-haiku-4-5"]["breakEvenRequestsPerDay"] == pytest.approx(
        (rest + 730 * 1.515) / (haiku * 730 / 24))
    assert rows["claude-haiku-4-5"]["breakEvenNote"] == "with 1 replica"
    # gpt-5-nano's bill at one replica's break-even load exceeds what that replica serves; at n replicas it needs
    # (rest + n hosts) / per-request, always above n replicas' capacity: the API stays cheaper.
    for n in range(1, 5):
        assert (rest + n * 730 * 1.515) / (per_request * 730 / 24) > n * s.replica_requests_per_s * 86400
    assert rows["gpt-5-nano"]["breakEvenRequestsPerDay"] is None
    assert rows["gpt-5-nano"]["breakEvenNote"].startswith("the API is cheaper at every load up to 4 replicas")


def test_unknown_price_is_unknown_never_zero(graphs):
    def no_nat(provider, service, region, sku):
        return None if service == "nat-gateway" else fake(provider, service, region, sku)

    est = price_preview(graphs["aws-prod"], no_nat)
    unknown = est.unknown
    assert len(unknown) == 3 and all(i.monthly is None for i in unknown)
    assert "no price for aws/nat-gateway/hour in us-east-1" in unknown[0].note
    assert est.total()[1] == pytest.approx(price_preview(graphs["aws-prod"], fake).total()[1] - 3 * 730 * 0.045)
    assert est.usd_per_1m_tokens is None  # a total with holes is no basis for a unit price
    report = to_json("aws-prod", est)
    assert report["unknownItems"] == 3 and report["items"][0]["monthlyUsd"] is not None
    assert "unknown" in markdown(report)


def test_vertex_by_hand(graphs):
    est = price_preview(graphs["gcp-prod"], fake)
    by = {i.description.split(" ")[0]: i for i in est.items}
    node = by["g2-standard-12"]
    (gpu,) = [i for i in est.items if i.description == "1 x NVIDIA_L4 per node"]
    assert node.monthly == pytest.approx((730 * 1.0, 730 * 1.0, 3 * 730 * 1.0))
    assert gpu.monthly == pytest.approx((730 * 0.7, 730 * 0.7, 3 * 730 * 0.7))
    psc = next(i for i in est.items if "Private Service Connect" in i.description)
    assert psc.monthly[1] == pytest.approx(730 * 0.01)
    key = next(i for i in est.items if i.type == "gcp:kms/cryptoKey:CryptoKey")
    assert key.monthly == pytest.approx((0.06, 0.06, 0.06))
    bq = next(i for i in est.items if i.type.endswith("Dataset"))
    assert bq.quantity[1] == pytest.approx(10_000 * 30 * 0.05 * 700 * 8 / 1e9)
    # The router (router: replicas 1, maxReplicas 3) on Cloud Run: instances of 1 vCPU and 2 GiB (the router's
    # default resources), CPU always allocated (instance-based billing: every second an instance lives). The default
    # load (10,000 requests/day: 0.12 req/s, each held 2 s + 200 tokens / 10 tokens/s = 22 s: 2.5 in flight) fits
    # one instance of 80 requests, the minimum, all month; at most 3.
    cpu, memory = (i for i in est.items if i.type == "gcp:cloudrunv2/service:Service")
    assert cpu.component == memory.component == "gcp-prod-router"
    assert cpu.monthly == pytest.approx((730 * 0.0648, 730 * 0.0648, 3 * 730 * 0.0648))
    assert memory.monthly == pytest.approx((730 * 2 * 0.00675, 730 * 2 * 0.00675, 3 * 730 * 2 * 0.00675))
    # Secret versions: the Hub token's and the router's 3 (master key, callers support-bot and batch).
    versions = [i for i in est.items if i.type.endswith("SecretVersion")]
    assert len([i for i in versions if i.component == "gcp-prod-router"]) == 3 and len(versions) == 4
    run = 730 * (0.0648 + 2 * 0.00675)  # one instance, all month
    # Node, GPU, PSC endpoint, key, 4 secret versions, the private DNS zone, the logged requests, the router.
    expected = 730 * 1.0 + 730 * 0.7 + 730 * 0.01 + 0.06 + 4 * 0.06 + 0.20 + bq.quantity[1] * 0.02 + run
    assert est.total() == pytest.approx((expected, expected, expected + 2 * 730 * (1.0 + 0.7) + 2 * run))
    assert est.unknown == [] and est.unpriced == []


def test_every_resource_type_is_priced_or_known_free(graphs):
    for name, graph in graphs.items():
        est = price_preview(graph, fake)
        assert est.unpriced == [], f"{name}: no cost rule for {est.unpriced}"


def test_budget_guard(graphs):
    prod = graphs["aws-prod"]
    assert price_preview(prod, fake).budget_monthly_usd == 8000 and not price_preview(prod, fake).over_budget
    tight = json.loads(json.dumps(prod))
    tight["outputs"]["costInputs"]["budgetMonthlyUsd"] = 500
    assert price_preview(tight, fake).over_budget


def test_engine_reads_the_graph_not_the_config():
    """The same engine prices any graph: a hand-made one with one endpoint configuration and its scaling."""
    resources = [
        Resource("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "x-config", "x",
                 {"productionVariants": [{"instanceType": "ml.g5.2xlarge", "initialInstanceCount": 2}]}),
        Resource("aws:appautoscaling/target:Target", "x-scaling", "x", {"minCapacity": 2, "maxCapacity": 3}),
    ]
    est = estimate(resources, {"aws": "us-east-1"}, Usage.from_wire({"requestsPerDay": 0}), fake)
    assert est.total() == pytest.approx((2 * 730 * 1.515, 2 * 730 * 1.515, 3 * 730 * 1.515))


def test_markdown_comment_is_golden(graphs):
    report = to_json("aws-prod", price_preview(graphs["aws-prod"], fake))
    text = markdown(report)
    golden = GOLDEN / "cost_aws_prod.md"
    if os.environ.get("SELFHOST_UPDATE_GOLDEN"):  # after an intended change: regenerate, review the diff, commit
        golden.write_text(text)
    assert text == golden.read_text()


def test_diff_between_two_commits(tmp_path, project):
    """`--base`: the stack previewed at an older commit, in a temporary worktree, with that commit's code."""
    repo = git_project(tmp_path)
    # The endpoint's maximum only (targets[0].scaling): the router's `maxReplicas: 4` stays.
    endpoint_max = "maxReplicas: {}\n        targetInvocationsPerInstance"
    _commit(repo, "aws-prod", lambda text: _once(text, endpoint_max.format(4), endpoint_max.format(6))
            .replace("nat: per-az", "nat: single"))

    base_graph = previews_at_ref(repo, "HEAD~1", ["aws-prod"])["aws-prod"]
    head_graph = previews_at_ref(repo, "HEAD", ["aws-prod"])["aws-prod"]
    assert isinstance(base_graph, dict) and isinstance(head_graph, dict), (base_graph, head_graph)
    base = to_json("aws-prod", price_preview(base_graph, fake))
    head = to_json("aws-prod", price_preview(head_graph, fake))
    rows = diff(base, head)
    removed = [r for r in rows if r["change"] == "removed"]
    # Two NAT gateways and their addresses go; the hosting line changes its maximum, not its expected cost.
    assert len([r for r in removed if "NAT gateway" in r["description"]]) == 2
    assert len([r for r in removed if "IPv4" in r["description"]]) == 2
    assert head["totals"]["max"] - base["totals"]["max"] == pytest.approx(2 * 730 * 1.515 - 2 * 730 * (0.045 + 0.005))
    assert previews_at_ref(repo, "HEAD", ["no-such-stack"]) == {"no-such-stack": None}
    # The worktree is gone afterwards.
    assert "selfhost-base-" not in git(repo, "worktree", "list").stdout


def _once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _commit(repo: Path, stack: str, edit: Callable[[str], str]) -> None:
    path = repo / "stacks" / f"Pulumi.{stack}.yaml"
    path.write_text(edit(path.read_text()))
    git(repo, "commit", "-qam", f"edit {stack}")


def test_the_base_of_several_stacks_is_previewed_once_and_over_budget_still_counts(tmp_path, monkeypatch):
    """`--all --base`: one worktree and one `preview --all --json` there for every stack, not one per stack. A base
    over its budget exits 3 with its graph, which is the base all the same; a stack that fails there is a failure
    of its own, with why, and the others still have their graphs."""
    import selfhost.cost_report as reader

    repo = git_project(tmp_path)
    _commit(repo, "aws-dev", lambda text: text.replace("monthlyUsd: 1500", "monthlyUsd: 1"))
    previews: list[list[str]] = []
    real_run = subprocess.run

    def run(argv, *args, **kwargs):
        if "selfhost.cli" in argv:
            previews.append(argv[argv.index("preview") + 1:])
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(reader.subprocess, "run", run)
    graphs = previews_at_ref(repo, "HEAD", ["aws-dev", "aws-prod", "new-in-this-branch"])
    assert previews == [["--all", "--json", "--project", previews[0][-1]]]
    assert graphs["aws-dev"]["stack"] == "aws-dev" and graphs["aws-prod"]["stack"] == "aws-prod"
    assert graphs["new-in-this-branch"] is None
    assert previews_at_ref(repo, "HEAD", ["aws-dev"])["aws-dev"]["stack"] == "aws-dev"

    _commit(repo, "aws-prod", lambda text: text.replace("maxReplicas: 4", "maxReplicas: lots"))
    graphs = previews_at_ref(repo, "HEAD", ["aws-dev", "onprem"])
    assert graphs["aws-dev"]["stack"] == "aws-dev" and graphs["onprem"]["stack"] == "onprem"
    graphs = previews_at_ref(repo, "HEAD", ["aws-dev", "aws-prod"])
    assert graphs["aws-dev"]["stack"] == "aws-dev"
    failure = graphs["aws-prod"]
    assert isinstance(failure, StackFailure) and failure.kind == "base"
    assert failure.message.startswith("its preview at HEAD failed:") and "maxReplicas" in failure.message
    assert "selfhost-base-" not in git(repo, "worktree", "list").stdout


def test_cost_cli_formats(tmp_path):
    selfhost = str(Path(sys.executable).with_name("selfhost"))
    run = subprocess.run([selfhost, "cost", "aws-dev", "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["stack"] == "aws-dev" and report["totals"]["expected"] > 0
    run = subprocess.run([selfhost, "cost", "--all", "--format", "markdown"], capture_output=True, text=True, cwd=ROOT)
    stacks = len(list((ROOT / "stacks").glob("Pulumi.*.yaml")))
    assert run.returncode == 0 and run.stdout.count("### selfhost-llm cost estimate") == stacks
    run = subprocess.run([selfhost, "cost", "aws-dev", "--format", "yaml"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1 and "allowed: table, json, markdown" in run.stderr


def test_resources_from_preview_keeps_components(graphs):
    resources = resources_from_preview(graphs["aws-dev"])
    config = next(r for r in resources if r.type.endswith("EndpointConfiguration"))
    assert config.component == "aws-dev-chat"
