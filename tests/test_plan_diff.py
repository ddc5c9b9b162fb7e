"""The plan diff of `selfhost preview <env> --base <ref>` (selfhost/plan_diff.py): on small hand-made preview
documents, and once end to end against a temporary git repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from components.targets.registry import replacement_rules
from selfhost.plan_diff import markdown, plan_diff, text

from .conftest import git, git_project

MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
BUCKET = "aws:s3/bucket:Bucket"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"  # not in the replacement table


def res(type_: str, name: str, inputs: dict[str, Any], *, id: str | None = None, secret: tuple[str, ...] = (),
        deps: tuple[dict, ...] = (), protect: bool = False, provider: str | None = None) -> dict[str, Any]:
    """One resource as `selfhost preview --json` writes it."""
    return {"urn": f"urn:pulumi:dev::selfhost-llm::{type_}::{name}", "type": type_, "name": name, "parent": None,
            "custom": True, "id": id or f"{name}-a1b2c3d", "protect": protect,
            "dependencies": [d["urn"] for d in deps], "inputs": inputs, "secretInputs": list(secret), "computed": {},
            **({"provider": provider} if provider else {})}


def doc(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"schemaVersion": 1, "project": "selfhost-llm", "stack": "dev", "resources": list(resources),
            "outputs": {}, "secretOutputs": [], "unmockedTypes": []}


def changed(d, name: str):
    return next(c for c in d.changes if c.name == name)


def test_added_removed_and_changed_by_urn():
    logs = res(LOG_GROUP, "logs", {"retentionInDays": 30, "tags": {"env": "dev"}})
    gone = res(LOG_GROUP, "old-logs", {"retentionInDays": 7})
    same = res(LOG_GROUP, "same", {"retentionInDays": 7})
    new_logs = res(LOG_GROUP, "logs", {"retentionInDays": 90, "tags": {"env": "dev", "team": "ml"}})
    added = res(LOG_GROUP, "new-logs", {"retentionInDays": 7})
    d = plan_diff(doc(logs, gone, same), doc(new_logs, added, same), "origin/main")
    assert d.summary() == "1 to add, 1 to change (0 replaced), 1 to remove"
    assert [(c.name, c.action) for c in d.changes] == [("logs", "update"), ("new-logs", "create"),
                                                        ("old-logs", "delete")]
    paths = {i.path: (i.old, i.new) for i in changed(d, "logs").inputs}
    assert paths == {"inputs.retentionInDays": ("30", "90"), "inputs.tags.team": (None, '"ml"')}
    # A type the table does not know: an update, but not a promise that it is one.
    assert changed(d, "logs").label == "update?" and d.warnings == []
    out = text(d)
    assert out.startswith("Plan for dev against origin/main: 1 to add, 1 to change (0 replaced), 1 to remove")
    assert 'inputs.retentionInDays: 30 -> 90' in out and "update?: the type" in out
    assert "same" not in out


def test_nested_paths_json_documents_and_long_values():
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-vllm:0.29.0-transformers5.15.0-gpu-py312-"
    base = res("kubernetes:apps/v1:Deployment", "chat", {"metadata": {"name": "chat", "labels": {
        "app.kubernetes.io/name": "a"}}, "spec": {"template": {"spec": {"containers": [{"image": image + "v1"}]}}}})
    head = json.loads(json.dumps(base))
    head["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = image + "v2"
    head["inputs"]["metadata"]["labels"]["app.kubernetes.io/name"] = "b"
    policy = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    role = res("aws:iam/rolePolicy:RolePolicy", "policy", {"policy": json.dumps(policy)})
    policy["Statement"][0]["Action"] = "s3:*"
    d = plan_diff(doc(base, role), doc(head, res("aws:iam/rolePolicy:RolePolicy", "policy",
                                                  {"policy": json.dumps(policy)})))
    c = changed(d, "chat")
    old, new = next((i.old, i.new) for i in c.inputs if i.path == "inputs.spec.template.spec.containers[0].image")
    # Shortened in the middle: the tags at the end are what differ.
    assert old and new and len(new) == 80 and old.endswith('py312-v1"') and new.endswith('py312-v2"') and "..." in new
    assert 'inputs.metadata.labels["app.kubernetes.io/name"]' in {i.path for i in c.inputs}
    # An image or label change rolls the Deployment in place: no replacement, no warning.
    assert c.action == "update" and c.known and not c.risky and d.warnings == []
    # A JSON document in a string reads as the statement that changed.
    assert [(i.path, i.old, i.new) for i in changed(d, "policy").inputs] == [
        ("inputs.policy<json>.Statement[0].Action", '"s3:GetObject"', '"s3:*"')]


def test_where_the_base_was_previewed_is_not_a_change():
    """The base runs in a temporary worktree (selfhost/cost_report.py previews_at_ref): its absolute paths are the
    project's."""
    image = lambda root: res("docker-build:index:Image", "image", {"context": {"location": f"{root}/containers"}})  # noqa: E731
    base, head = doc(image("/tmp/selfhost-base-k2j4x/tree")), doc(image("/work/repo"))
    assert plan_diff(base, head, "HEAD", "/work/repo").changes == []
    assert [i.path for i in plan_diff(base, head, "HEAD").changes[0].inputs] == ["inputs.context.location"]


def test_secret_values_are_never_shown():
    base = res(MODEL, "model", {"primaryContainer": {"environment": {"HF_TOKEN": "hf_leaked_before", "A": "1"}}})
    head = res(MODEL, "model", {"primaryContainer": {"environment": {"HF_TOKEN": "[secret]", "A": "1"},
                                                     "extra": "[secret]"}},
               secret=("primaryContainer.environment.HF_TOKEN", "primaryContainer.extra"))
    version = res("aws:secretsmanager/secretVersion:SecretVersion", "token", {"secretString": "[secret]"},
                  secret=("secretString",))
    d = plan_diff(doc(base, version), doc(head, version))
    model = changed(d, "model")
    assert {i.path: (i.old, i.new) for i in model.inputs} == {
        "inputs.primaryContainer.environment.HF_TOKEN": ("[secret]", "[secret]"),
        "inputs.primaryContainer.extra": (None, "[secret]")}
    # Two markers compare equal: a secret's change cannot be seen, so it is not reported.
    assert "token" not in {c.name for c in d.changes}
    for out in (text(d), markdown(d)):
        assert "hf_leaked_before" not in out and "[secret]" in out


def endpoint_stack(revision: str, instance_type: str = "ml.g5.2xlarge") -> dict[str, Any]:
    """A SageMaker endpoint as the program declares it: model -> endpoint configuration -> endpoint, each naming
    the one before by its (auto-named) id."""
    model = res(MODEL, "chat-model", {"executionRoleArn": "arn:aws:iam::123456789012:role/r", "primaryContainer": {
        "image": "vllm:0.29", "environment": {"SM_VLLM_REVISION": revision}}, "tags": {"env": "dev"}},
                id="chat-model-b8f65b9")
    config = res(CONFIG, "chat-config", {"productionVariants": [{"modelName": "chat-model-b8f65b9",
                                                                 "instanceType": instance_type}]},
                 id="chat-config-68a15f0", deps=(model,))
    endpoint = res(ENDPOINT, "chat-endpoint", {"name": "chat", "endpointConfigName": "chat-config-68a15f0"},
                   id="chat", deps=(config,))
    alarm = res("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm", {"dimensions": {"EndpointName": "chat"}},
                deps=(endpoint,))
    return doc(model, config, endpoint, alarm)


def test_model_change_replaces_the_config_and_updates_the_endpoint_blue_green():
    d = plan_diff(endpoint_stack("a" * 40), endpoint_stack("b" * 40))
    assert d.summary() == "0 to add, 3 to change (2 replaced), 0 to remove"
    model, config, endpoint = (changed(d, n) for n in ("chat-model", "chat-config", "chat-endpoint"))
    assert model.action == "replace" and not model.risky
    assert [i.effect for i in model.inputs] == ["replace"]
    # The replaced model gets a new name; the configuration naming it is immutable, so it is replaced too...
    assert config.action == "replace" and config.follows == ["chat-model"] and config.risky
    assert config.inputs[0].path == "inputs.productionVariants[0].modelName"
    assert config.inputs[0].new == "(known after chat-model is replaced)"
    # ...and the endpoint moves to the new configuration in place: a blue/green deployment, said so.
    assert endpoint.action == "update" and endpoint.follows == ["chat-config"] and not endpoint.risky
    assert any("blue/green" in n for n in endpoint.notes)
    # The alarm names the endpoint by its fixed name, which the update keeps: not part of the change.
    assert "alarm" not in {c.name for c in d.changes}
    assert len(d.warnings) == 1 and d.warnings[0].startswith(f"chat-config ({CONFIG}) is replaced")
    assert "blue/green deployment" in d.warnings[0]
    # A tag is the one input of a model that updates in place.
    tagged = endpoint_stack("a" * 40)
    tagged["resources"][0]["inputs"]["tags"]["team"] = "ml"
    d = plan_diff(endpoint_stack("a" * 40), tagged)
    assert [(c.name, c.action, c.known) for c in d.changes] == [("chat-model", "update", True)]


def test_instance_type_change_replaces_the_config():
    d = plan_diff(endpoint_stack("a" * 40), endpoint_stack("a" * 40, "ml.g5.12xlarge"))
    config = changed(d, "chat-config")
    assert config.action == "replace" and config.inputs[0].path == "inputs.productionVariants[0].instanceType"
    assert [c.name for c in d.changes] == ["chat-config", "chat-endpoint"]


def test_bucket_replacement_warns_and_in_place_update_does_not():
    bucket = res(BUCKET, "artifacts", {"bucket": "acme-artifacts", "tags": {"env": "dev"}}, id="acme-artifacts",
                 protect=True)
    renamed = res(BUCKET, "artifacts", {"bucket": "acme-models", "tags": {"env": "dev"}}, id="acme-models",
                  protect=True)
    d = plan_diff(doc(bucket), doc(renamed))
    c = changed(d, "artifacts")
    assert c.action == "replace" and c.risky and c.inputs[0].effect == "replace"
    assert len(d.warnings) == 1
    warning = d.warnings[0]
    assert warning.startswith(f"artifacts ({BUCKET}) is replaced (by inputs.bucket): data loss")
    assert "protected" in warning
    # A tag change updates the bucket in place: the table knows every replace-on-change input of a bucket.
    retagged = res(BUCKET, "artifacts", {"bucket": "acme-artifacts", "tags": {"env": "prod"}}, id="acme-artifacts")
    d = plan_diff(doc(bucket), doc(retagged))
    assert [(c.action, c.known, c.risky) for c in d.changes] == [("update", True, False)] and d.warnings == []
    assert [i.path for i in d.changes[0].inputs] == ["inputs.tags.env", "options.protect"]
    # Removed: the objects go with it.
    d = plan_diff(doc(bucket), doc())
    assert d.summary() == "0 to add, 0 to change (0 replaced), 1 to remove"
    assert "is removed: data loss" in d.warnings[0]


def test_kubernetes_volume_and_provider():
    pvc = {"metadata": {"name": "cache", "namespace": "chat"}, "spec": {"resources": {"requests": {
        "storage": "50Gi"}}}}
    bigger = json.loads(json.dumps(pvc))
    bigger["spec"]["resources"]["requests"]["storage"] = "100Gi"
    provider = res("pulumi:providers:kubernetes", "cluster", {"context": "store-0042", "kubeconfig": "[secret]"},
                   secret=("kubeconfig",))
    moved = res("pulumi:providers:kubernetes", "cluster", {"context": "store-0043", "kubeconfig": "[secret]"},
                secret=("kubeconfig",))
    claim = res("kubernetes:core/v1:PersistentVolumeClaim", "cache", pvc, id="chat/cache", provider=provider["urn"])
    grown = res("kubernetes:core/v1:PersistentVolumeClaim", "cache", bigger, id="chat/cache",
                provider=provider["urn"])
    d = plan_diff(doc(provider, claim), doc(moved, grown))
    volume, cluster = changed(d, "cache"), changed(d, "cluster")
    # pulumi-kubernetes replaces a claim on any spec change, a resize too: a new, empty volume.
    assert volume.action == "replace" and volume.risky and "data loss" in (volume.why or "")
    # Another context may be another cluster: the provider decides from the kubeconfig, a secret here.
    assert cluster.action == "may-replace" and cluster.risky and "1 resources use this provider" in cluster.notes
    assert d.summary() == "0 to add, 2 to change (1 replaced, 1 may be replaced), 0 to remove"
    assert any(w.startswith("cluster (pulumi:providers:kubernetes) may be replaced") for w in d.warnings)


def test_new_stack_and_no_change():
    head = endpoint_stack("a" * 40)
    d = plan_diff(None, head, "HEAD")
    assert d.new_stack and d.summary() == "4 to add, 0 to change (0 replaced), 0 to remove"
    assert text(d).startswith("Plan for dev against HEAD: new stack, 4 to add")
    assert "New stack: **4 to add" in markdown(d)
    same = plan_diff(head, head, "HEAD")
    assert same.changes == [] and text(same) == "Plan for dev against HEAD: no changes\n"
    assert "No changes." in markdown(same)


def test_markdown_comment_puts_warnings_first_and_cites_its_sources():
    out = markdown(plan_diff(endpoint_stack("a" * 40), endpoint_stack("b" * 40), "origin/main"))
    assert out.startswith("### selfhost-llm plan: `dev` against `origin/main`\n\n"
                          "**0 to add, 3 to change (2 replaced), 0 to remove**\n")
    assert out.index("> [!WARNING]") < out.index("#### Replaced") < out.index("#### Updated in place")
    assert ("  - `inputs.primaryContainer.environment.SM_VLLM_REVISION`: "
            f'`"{"a" * 40}"` → `"{"b" * 40}"` **forces replacement**') in out
    assert "- **replace** `chat-config` `aws:sagemaker/endpointConfiguration:EndpointConfiguration` (follows " \
           "`chat-model`)" in out
    assert "internal/service/sagemaker/model.go" in out  # why a model change is a replacement


def test_every_rule_cites_its_source():
    for type_, rule in replacement_rules()[0].items():
        assert rule.source, type_
        assert rule.replace or rule.maybe, type_


def test_cli_diff_against_a_commit(tmp_path):
    """`selfhost preview <stack> --base HEAD` in a git repository whose working tree changes the model revision."""
    repo = git_project(tmp_path)
    stack = repo / "stacks" / "Pulumi.aws-prod.yaml"
    config = yaml.safe_load(stack.read_text())
    old = config["config"]["selfhost-llm:models"][0]["revision"]
    config["config"]["selfhost-llm:models"][0]["revision"] = new = "0" * 40
    stack.write_text(yaml.safe_dump(config))

    selfhost = str(Path(sys.executable).with_name("selfhost"))
    run = subprocess.run([selfhost, "preview", "aws-prod", "--base", "HEAD", "--project", str(repo)],
                         capture_output=True, text=True, cwd=repo, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    # aws-prod stages its weights: the new revision is a new bucket prefix for the model (replaced), the role
    # (updated) and the staging job.
    assert out.startswith("Plan for aws-prod against HEAD: 0 to add, 5 to change (2 replaced), 0 to remove"), out
    (line,) = [x for x in out.splitlines() if "modelDataSource.s3DataSources[0].s3Uri" in x]
    assert old[-10:] in line and new[-10:] in line and line.endswith("(forces replacement)")
    assert "aws-prod-chat-weights-copy  command:local:Command" in out
    assert ("warning: aws-prod-chat-config (aws:sagemaker/endpointConfiguration:EndpointConfiguration) is replaced "
            "(by inputs.productionVariants[0].modelName): endpoint configurations are immutable") in out
    assert "update      aws-prod-chat-endpoint  aws:sagemaker/endpoint:Endpoint  (follows aws-prod-chat-config)" in out
    assert "Stack aws-prod" not in out  # the diff replaces the tree
    assert "selfhost-base-" not in git(repo, "worktree", "list").stdout
    bad = subprocess.run([selfhost, "preview", "aws-prod", "--format", "markdown", "--project", str(repo)],
                         capture_output=True, text=True, cwd=repo, timeout=300)
    assert bad.returncode == 1 and "allowed with --base" in bad.stderr


def test_cli_diff_of_every_stack_against_a_commit(tmp_path):
    """`--all --base`: every stack's plan and cost change, the base previewed once for them all; a stack that
    fails at the base is reported as failing, and the others still get theirs."""
    repo = git_project(tmp_path)
    onprem = repo / "stacks" / "Pulumi.onprem.yaml"
    good = onprem.read_text()
    onprem.write_text(good.replace("maxReplicas: 4", "maxReplicas: lots"))
    git(repo, "commit", "-qam", "break onprem")
    onprem.write_text(good)
    stack = repo / "stacks" / "Pulumi.aws-prod.yaml"
    stack.write_text(stack.read_text().replace("nat: per-az", "nat: single"))  # two NAT gateways fewer
    stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (repo / "stacks").glob("Pulumi.*.yaml"))

    # The CLI from the repository itself, as a user runs it in their checkout: the serving image's build context
    # (and so its tag) is where the code is, and the base's is its worktree's.
    cli = [sys.executable, "-m", "selfhost.cli"]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    run = subprocess.run([*cli, "preview", "--all", "--base", "HEAD", "--project", str(repo)],
                         capture_output=True, text=True, cwd=repo, env=env, timeout=300)
    assert run.returncode == 1, run.stderr
    assert "error: onprem: its preview at HEAD failed:" in run.stderr and "maxReplicas" in run.stderr
    plans = [line for line in run.stdout.splitlines() if line.startswith("Plan for ")]
    assert [p.split()[2] for p in plans] == [s for s in stacks if s != "onprem"]
    assert all(p.endswith(": no changes") for p in plans if not p.startswith("Plan for aws-prod ")), plans
    (changed,) = [p for p in plans if p.startswith("Plan for aws-prod ")]
    assert changed.endswith(" to remove") and not changed.endswith(" 0 to remove"), changed

    run = subprocess.run([*cli, "cost", "--all", "--base", "HEAD~1", "--format", "json", "--project", str(repo)],
                         capture_output=True, text=True, cwd=repo, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    reports = json.loads(run.stdout)["stacks"]
    assert [r["stack"] for r in reports] == stacks and all(r["base"] == "HEAD~1" for r in reports)
    assert [r["stack"] for r in reports if r["diff"]] == ["aws-prod"]
    assert "selfhost-base-" not in git(repo, "worktree", "list").stdout


def test_the_plan_says_which_adapter_changed_and_how():
    def with_served(adapters: dict[str, str], weights: str = "hf://Qwen/Qwen2.5-7B-Instruct@" + "a" * 40) -> dict:
        d = doc(res("aws:sagemaker/model:Model", "chat-model", {"primaryContainer": {"environment": {
            "SELFHOST_ADAPTERS": ",".join(f"{n}={s}" for n, s in adapters.items())}}}))
        d["outputs"] = {"endpoints": {"chat": {"kind": "sagemaker", "weights": weights, "adapters": adapters}}}
        return d

    old = with_served({"support": "hf://acme/support@" + "1" * 40 + " (rank 16)", "legal": "s3://l/x (rank 8)"})
    new = with_served({"support": "hf://acme/support@" + "2" * 40 + " (rank 16)", "sales": "s3://l/s (rank 8)"},
                      weights="s3://acme-models/qwen-support-v2")
    d = plan_diff(old, new, "main")
    assert d.served == [
        "chat: weights hf://Qwen/Qwen2.5-7B-Instruct@" + "a" * 40 + " -> s3://acme-models/qwen-support-v2",
        "chat: adapter 'sales' added (s3://l/s (rank 8))",
        "chat: adapter 'legal' removed (was s3://l/x (rank 8))",
        "chat: adapter 'support' hf://acme/support@" + "1" * 40 + " (rank 16) -> hf://acme/support@" + "2" * 40
        + " (rank 16)",
    ]
    assert "serves: chat: adapter 'sales' added" in text(d)
    assert "#### What the targets serve" in markdown(d) and "- chat: adapter 'legal' removed" in markdown(d)
    # A new stack has nothing to compare with: all of it is new.
    assert plan_diff(None, new).served == []
