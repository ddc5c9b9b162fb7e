"""Dashboards, alerts and digests of Kubernetes targets: the Grafana dashboard JSON's structure and its PromQL's
series (each one vLLM, our adapter or kube-state-metrics exports: components/catalog/metrics.py), the
PrometheusRule per engine, the config they need, production's digests (config errors and the mandatory policy
rule), and the new types' mocks, Terraform mapping and render."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from components.catalog import metrics
from components.config import ConfigError, load_environment
from components.cost import resources_from_preview
from components.k8s.observability import (
    DASHBOARD_LABEL,
    AlertThresholds,
    Observed,
    alert_rules,
    dashboard_config_map,
    dashboards,
    prometheus_rule,
)
from components.policies import BY_ID, check
from components.policy import Plan
from components.targets.kubernetes import Kubernetes
from components.targets.registry import kind_of
from selfhost.cli import app
from selfhost.export import TYPES, terraform_plan
from selfhost.render import manifests

from .k8s_schemas import problems
from .test_kubernetes import as_applied, edge_config, problems_of

PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
THRESHOLDS = AlertThresholds(error_rate=0.05, ttft_p95_seconds=2.0, request_p95_seconds=50.0, queue_depth=10,
                             kv_cache_use=0.9, restarts_per_hour=2, for_minutes=10)
VLLM = Observed("chat", "onprem-chat", "vllm", 1)
LLAMACPP = Observed("assistant", "edge-assistant", "llamacpp", 1)


# ---------------------------------------------------------------------------------------------------------
# PromQL: the metric names an expression reads


PROMQL_WORDS = {
    # Functions, aggregations and keywords (prometheus.io/docs/prometheus/latest/querying/) the expressions use.
    "sum", "max", "min", "avg", "count", "rate", "increase", "delta", "histogram_quantile", "by", "without",
    "label_values", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "clamp_min", "max_over_time", "min_over_time",
}


def metric_names(expr: str) -> set[str]:
    """The series names an expression (or a Grafana `label_values(...)` query) reads: the identifiers left once
    label matchers, `by (...)` lists, ranges, strings, Grafana variables and numbers are gone."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)  # grouping labels
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\$\w+", " ", text)  # Grafana variables
    text = re.sub(r",\s*[a-z_]+\s*\)", ")", text) if text.startswith("label_values") else text  # its label
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+(\.\d+)?|e\d+", w)}


def known(name: str, engine: str) -> bool:
    """A series the target's engine, the adapter or kube-state-metrics exports (a histogram with its suffixes)."""
    catalog = metrics.series(engine)
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return name in catalog or (catalog.get(base) == "histogram" and base != name)


def test_metric_names_are_read_from_promql():
    assert metric_names('sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{namespace="a",x=~"b"}[5m]))'
                        ) == {"vllm:time_to_first_token_seconds_bucket"}
    assert metric_names('label_values(vllm:num_requests_running{namespace="$namespace"}, model_name)') == {
        "vllm:num_requests_running"}
    assert metric_names("sum(rate(a_total[5m])) / sum(rate(b_total[5m])) > 0.05") == {"a_total", "b_total"}


# ---------------------------------------------------------------------------------------------------------
# The catalog of series


def test_the_adapter_series_are_what_its_registry_exports():
    from selfhost_adapter.usage import Usage

    families = {f.name: f.type for f in Usage(log_prompts=False).registry.collect()}
    stored = {f"{name}_total" if kind == "counter" else name: kind for name, kind in families.items()}
    assert stored == metrics.ADAPTER


def test_the_vllm_series_include_those_design_section_7_names():
    # ../shared/DESIGN.md section 7, from vLLM's own dashboards and vllm/v1/metrics/loggers.py.
    design = ["num_requests_running", "num_requests_waiting", "kv_cache_usage_perc", "time_to_first_token_seconds",
              "inter_token_latency_seconds", "e2e_request_latency_seconds", "prompt_tokens_total",
              "generation_tokens_total", "num_preemptions_total", "prefix_cache_queries_total",
              "prefix_cache_hits_total"]
    assert {f"vllm:{name}" for name in design} <= set(metrics.VLLM)
    assert all(name.startswith("vllm:") for name in metrics.VLLM)
    assert all((kind == "counter") == name.endswith("_total") for name, kind in {**metrics.VLLM,
                                                                                 **metrics.ADAPTER}.items())
    assert metrics.series("llamacpp").keys().isdisjoint(metrics.VLLM)  # llama-cpp-python serves no metrics


# ---------------------------------------------------------------------------------------------------------
# Dashboards


def check_dashboard(board: dict[str, Any], engine: str) -> None:
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 39
    assert 0 < len(board["uid"]) <= 40 and board["title"]
    assert "vllm" in board["description"] and "usage.py" in board["description"]  # where the panels come from
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert ("model" in variables) == (engine == "vllm")
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(known(m, engine) for m in metric_names(v["query"]["query"])), v["query"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) >= 6
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["type"] in ("timeseries", "stat") and panel["title"] and panel["description"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["targets"] and len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            names = metric_names(target["expr"])
            assert names, target["expr"]
            unknown = [n for n in names if not known(n, engine)]
            assert unknown == [], (panel["title"], target["expr"])
    # No two panels in the same place.
    places = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]]
    assert len(places) == len(set(places))


@pytest.mark.parametrize(("target", "files"), [
    (VLLM, {"onprem-chat-overview.json", "onprem-chat-kv-cache.json"}),
    (LLAMACPP, {"edge-assistant-overview.json"})])
def test_dashboards_are_grafana_dashboard_json_on_known_series(target, files):
    boards = dashboards(target)
    assert set(boards) == files
    parsed = {name: json.loads(text) for name, text in boards.items()}
    for board in parsed.values():
        check_dashboard(board, target.engine)
    assert len({b["uid"] for b in parsed.values()}) == len(parsed)
    exprs = " ".join(t["expr"] for b in parsed.values() for p in b["panels"] for t in p["targets"])
    if target.engine == "vllm":
        design = ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                  "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds",
                  "vllm:e2e_request_latency_seconds", "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                  "vllm:num_preemptions_total", "vllm:prefix_cache_hits_total", "selfhost_requests_total",
                  "selfhost_request_duration_seconds", "kube_pod_container_status_restarts_total"]
        assert [name for name in design if name not in exprs] == []
    else:
        assert "vllm:" not in json.dumps(parsed)


def test_the_onprem_stack_ships_its_dashboards_where_the_sidecar_finds_them(previews):
    (config_map,) = [m for m in manifests(previews["onprem"]) if m["kind"] == "ConfigMap"]
    assert config_map["metadata"]["namespace"] == "onprem-chat"
    assert config_map["metadata"]["labels"].items() >= DASHBOARD_LABEL.items()
    assert config_map["metadata"]["name"] == "chat-dashboards"
    assert set(config_map["data"]) == {"onprem-chat-overview.json", "onprem-chat-kv-cache.json"}
    for text in config_map["data"].values():
        check_dashboard(json.loads(text), "vllm")
    assert len(json.dumps(config_map)) < 1 << 20  # a ConfigMap holds at most 1 MiB


def test_dashboards_can_go_to_the_monitoring_namespace():
    raw, secrets = edge_config("onprem", **{"target.dashboards": {"namespace": "monitoring"}})
    env = load_environment("onprem", raw, secrets)
    assert env.targets[0].dashboards.namespace == "monitoring"
    config_map = dashboard_config_map(VLLM, "monitoring", {})
    # Named after the target's namespace there: another stack's `chat` may share the monitoring namespace.
    assert config_map["metadata"] == {"name": "onprem-chat-dashboards", "namespace": "monitoring",
                                      "labels": DASHBOARD_LABEL}


# ---------------------------------------------------------------------------------------------------------
# Alerts


def test_vllm_alerts_cover_errors_ttft_queue_kv_cache_and_restarts():
    rules = {r["alert"]: r for r in alert_rules(VLLM, THRESHOLDS)}
    assert set(rules) == {"SelfhostHighErrorRate", "SelfhostSlowTimeToFirstToken", "SelfhostQueueBacklog",
                          "SelfhostKvCacheFull", "SelfhostContainerRestarts", "SelfhostEngineRestarts"}
    assert rules["SelfhostHighErrorRate"]["expr"].endswith("> 0.05") and 'status=~"5.."' in rules[
        "SelfhostHighErrorRate"]["expr"]
    assert "histogram_quantile(0.95" in rules["SelfhostSlowTimeToFirstToken"]["expr"]
    assert rules["SelfhostSlowTimeToFirstToken"]["expr"].endswith("> 2")
    assert rules["SelfhostQueueBacklog"]["expr"].startswith("max(vllm:num_requests_waiting{")
    assert rules["SelfhostKvCacheFull"]["expr"].endswith("> 0.9")
    assert "kube_pod_container_status_restarts_total" in rules["SelfhostContainerRestarts"]["expr"]
    for r in rules.values():
        assert r["for"] == "10m" and r["labels"]["severity"] in ("critical", "warning")
        assert 'namespace="onprem-chat"' in r["expr"]
        assert all(known(m, "vllm") for m in metric_names(r["expr"])), r["expr"]


def test_llamacpp_alerts_use_only_the_series_it_has():
    rules = {r["alert"]: r for r in alert_rules(LLAMACPP, THRESHOLDS)}
    assert set(rules) == {"SelfhostHighErrorRate", "SelfhostSlowResponses", "SelfhostQueueBacklog",
                          "SelfhostContainerRestarts", "SelfhostEngineRestarts"}
    assert "vllm:" not in json.dumps(rules)
    assert "selfhost_request_duration_seconds_bucket" in rules["SelfhostSlowResponses"]["expr"]
    assert rules["SelfhostQueueBacklog"]["expr"].endswith("- 1 > 10")  # beyond the one request it runs
    for r in rules.values():
        assert all(known(m, "llamacpp") for m in metric_names(r["expr"])), r["expr"]


@pytest.mark.parametrize("target", [VLLM, LLAMACPP], ids=["vllm", "llamacpp"])
def test_the_prometheus_rule_validates_against_its_crd(target):
    meta = {"name": target.name, "namespace": target.namespace, "labels": {"app.kubernetes.io/name": "x"}}
    rule = prometheus_rule(target, THRESHOLDS, meta)
    assert problems(rule, "1.31") == []
    broken = json.loads(json.dumps(rule))
    broken["spec"]["groups"][0]["rules"][0]["for"] = "10 minutes"
    assert problems(broken, "1.31") and problems({**rule, "spec": {"groups": [{"rules": []}]}}, "1.31")


def test_the_onprem_stack_alerts_at_the_configured_thresholds(previews):
    (rule,) = [m for m in manifests(previews["onprem"]) if m["kind"] == "PrometheusRule"]
    assert problems(as_applied(rule), "1.31") == []
    exprs = {r["alert"]: r["expr"] for r in rule["spec"]["groups"][0]["rules"]}
    # The defaults: 5%, the usage's 2 s time to first token, twice the 5 waiting requests KEDA scales at, 90%.
    assert exprs["SelfhostHighErrorRate"].endswith("> 0.05")
    assert exprs["SelfhostSlowTimeToFirstToken"].endswith("> 2")
    assert exprs["SelfhostQueueBacklog"].endswith("> 10") and exprs["SelfhostKvCacheFull"].endswith("> 0.9")
    raw, secrets = edge_config("onprem", **{"target.alerts": {"errorRatePercent": 1, "queueDepth": 30,
                                                              "ttftP95Seconds": 0.5, "forMinutes": 5}})
    env = load_environment("onprem", raw, secrets)
    from components.targets.kubernetes import alert_thresholds

    a = alert_thresholds(env, env.targets[0])
    assert (a.error_rate, a.queue_depth, a.ttft_p95_seconds, a.for_minutes) == (0.01, 30, 0.5, 5)


def test_llamacpp_defaults_come_from_the_usage():
    raw, secrets = edge_config(**{"target.alerts": {}, "target.serviceMonitor": True})
    env = load_environment("edge", raw, secrets)
    from components.targets.kubernetes import alert_thresholds

    a = alert_thresholds(env, env.targets[0])
    # edge: 20 s to the first token, then 150 tokens at 5 tokens/s.
    assert a.request_p95_seconds == 50.0 and a.queue_depth == 4


@pytest.mark.parametrize("section", ["dashboards", "alerts"])
def test_dashboards_and_alerts_need_the_metrics_scraped(section):
    found = problems_of(*edge_config(**{f"target.{section}": {}}))
    assert any(p.startswith(f"selfhost-llm:targets[0].{section}:") and "serviceMonitor" in p for p in found), found


def test_bad_thresholds_name_the_key():
    found = problems_of(*edge_config(**{"target.serviceMonitor": True, "target.alerts": {"kvCachePercent": 150}}))
    assert any("targets[0].alerts.kvCachePercent" in p for p in found), found


# ---------------------------------------------------------------------------------------------------------
# Digests


def test_a_production_target_without_a_digest_is_refused_with_how_to_get_one():
    raw, secrets = edge_config("onprem", **{"target.imageDigest": None})
    with pytest.raises(ConfigError) as info:
        load_environment("onprem", raw, secrets)
    (text,) = [str(p) for p in info.value.problems]
    assert text.startswith("selfhost-llm:targets[0].imageDigest:") and "production" in text
    assert "--metadata-file" in text and "imagetools inspect" in text
    # Below production a tag is allowed (the advisory rule reports it).
    raw["selfhost-llm:tier"] = "staging"
    load_environment("onprem", raw, secrets)


def test_a_production_router_without_a_digest_is_refused():
    from .test_router import problems_of as router_problems

    for image in (None, "ghcr.io/berriai/litellm-non_root:v1.99.4"):
        found = router_problems(**{"router.image": image})
        (text,) = [p for p in found if p.startswith("selfhost-llm:router.image:")]
        assert "by digest" in text and "imagetools inspect" in text


@pytest.mark.parametrize("stack", ["onprem", "hybrid"])
def test_production_stacks_run_every_image_by_digest(previews, stack):
    p = previews[stack]
    assert p.outputs["tier"] == "production"
    images = [c["image"] for m in manifests(p) if m["kind"] == "Deployment"
              for c in m["spec"]["template"]["spec"]["containers"]]
    assert images and all("@sha256:" in image for image in images), images


def test_the_digest_rule_is_mandatory_in_production_and_advisory_below(previews):
    advisory, mandatory = BY_ID["k8s-image-digest"], BY_ID["k8s-image-digest-production"]
    assert not advisory.mandatory and mandatory.mandatory
    edge = resources_from_preview(previews["edge"].to_json())
    assert advisory.run(Plan(edge, outputs={"tier": "development"}))
    assert mandatory.run(Plan(edge, outputs={"tier": "development"})) == []
    production = mandatory.run(Plan(edge, outputs={"tier": "production"}))
    assert production and "pinned by tag" in production[0].message
    assert advisory.run(Plan(edge, outputs={"tier": "production"})) == []
    report = check(edge, None, {"tier": "production"})
    assert {f.rule for f in report.violations} == {"k8s-image-digest-production"}
    onprem = previews["onprem"]
    assert check(resources_from_preview(onprem.to_json()), None, onprem.outputs).violations == []


# ---------------------------------------------------------------------------------------------------------
# The new types: free, mocked, exported, rendered


def test_the_prometheus_rule_type_is_free_mocked_and_exported(previews):
    assert PROMETHEUS_RULE in Kubernetes.free_types
    assert isinstance(kind_of(next(t for t in _targets("onprem"))), Kubernetes)
    (rule,) = previews["onprem"].by_type(PROMETHEUS_RULE)
    assert rule.provider and rule.inputs["kind"] == "PrometheusRule"
    assert TYPES[PROMETHEUS_RULE].type == "kubernetes_manifest" and TYPES[PROMETHEUS_RULE].manifest
    assert previews["onprem"].unmocked_types == []
    exported = terraform_plan(previews["onprem"].to_json())
    assert any(a.startswith("kubernetes_manifest.") and "alerts" in a for a in exported.addresses.values())


def _targets(stack: str) -> list[Any]:
    raw, secrets = edge_config(stack)
    return list(load_environment(stack, raw, secrets).targets)


def test_render_writes_the_dashboards_and_the_rule(tmp_path, previews):
    result = CliRunner().invoke(app, ["render", "onprem", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    kinds = [yaml.safe_load(f.read_text())["kind"] for f in sorted(tmp_path.glob("[0-9][0-9]-*.yaml"))]
    assert "ConfigMap" in kinds and kinds[-1] == "PrometheusRule"
    readme = (tmp_path / "README.md").read_text()
    assert "PrometheusRule" in readme and "docker buildx build" not in readme  # by digest: nothing to build
    assert Path(tmp_path / "kustomization.yaml").exists()


def test_the_clusters_monitoring_labels_reach_the_service_monitor_and_the_rule():
    """kube-prometheus-stack's Prometheus selects ServiceMonitors and PrometheusRules by its Helm release's label:
    the cluster's `monitoringLabels` go on both, and on nothing else."""
    import runpy

    from selfhost.preview import run_program

    root = Path(__file__).parents[1]
    raw, secrets = edge_config("onprem", **{"cluster.monitoringLabels": {"release": "kube-prometheus-stack"}})
    preview = run_program("selfhost-llm", "onprem", raw, sorted(secrets),
                          lambda: runpy.run_path(str(root / "__main__.py"), run_name="__main__"))
    selected = {r.type.rsplit(":", 1)[-1]: r.inputs["metadata"]["labels"].get("release") for r in preview.resources
                if r.type.startswith("kubernetes:") and "metadata" in r.inputs}
    assert selected["ServiceMonitor"] == selected["PrometheusRule"] == "kube-prometheus-stack"
    assert selected["Deployment"] is None and selected["Service"] is None


@pytest.mark.parametrize("target", [VLLM, LLAMACPP])
def test_dashboards_read_back_through_grafanas_own_dashboard_model(target):
    """Grafana's schema, as its foundation SDK generates it from Grafana's dashboard kind and the panel and data
    source plugins' schemas: each dashboard decodes into Dashboard, every panel's type is a core panel plugin
    and every query a Prometheus query, and encoding it again gives back exactly what we wrote (a field the
    schema does not define is dropped by the decoder, so it would show here)."""
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.runtime import Runtime, UnknownDataquery
    from grafana_foundation_sdk.models.dashboard import Dashboard, Panel
    from grafana_foundation_sdk.models.prometheus import Dataquery

    plugins.register_default_plugins()
    for name, text in dashboards(target).items():
        model = Dashboard.from_json(json.loads(text))
        panels = [p for p in model.panels or [] if isinstance(p, Panel)]
        assert panels and all(p.type_val in Runtime().panelcfg_variants for p in panels), name
        queries = [q for p in panels for q in p.targets or []]
        assert queries and all(isinstance(q, Dataquery) and not isinstance(q, UnknownDataquery) for q in queries)
        assert lost(json.loads(text), json.loads(json.dumps(model, cls=JSONEncoder))) == [], name
    # The check can fail: a key Grafana's variable model does not have is lost on the way back.
    board = json.loads(next(iter(dashboards(target).values())))
    board["templating"]["list"][1]["definition"] = "label_values(up, namespace)"
    assert lost(board, json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))) == [
        "templating.list[1].definition"]


def lost(ours: Any, back: Any, path: str = "") -> list[str]:
    """The paths of what we wrote that a decode and encode did not give back as written (the encoder may add the
    schema's defaults: those are not ours)."""
    if isinstance(ours, dict):
        if not isinstance(back, dict):
            return [path]
        return [p for k, v in ours.items()
                for p in ([f"{path}.{k}".lstrip(".")] if k not in back else lost(v, back[k], f"{path}.{k}"))]
    if isinstance(ours, list):
        if not isinstance(back, list) or len(back) != len(ours):
            return [path]
        return [p for i, (a, b) in enumerate(zip(ours, back, strict=True)) for p in lost(a, b, f"{path}[{i}]")]
    return [] if ours == back else [path.lstrip(".")]
