"""The GitHub Actions workflows (.github/workflows, docs/pull-requests.md).

actionlint (with shellcheck on every `run:` script) and zizmor's offline audits pass with no finding; the structure
the docs promise holds: every action pinned to a full commit SHA with its version, least-privilege permissions per
job, checkouts that keep no credentials, no `${{ }}` expression expanded inside a script, the real `pulumi preview`
and `pulumi up` with the policy pack, one GitHub environment per deployed stack. The plan job's scripts, and the
scripts that pick the stacks, run here for real against stand-ins for the `selfhost` CLI and for `gh`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
MARKER = "<!-- selfhost-plan -->"
SHA = re.compile(r"[0-9a-f]{40}")
CREDENTIAL_ACTIONS = ("aws-actions/configure-aws-credentials", "google-github-actions/auth")


def _tool(name: str) -> str:
    """A linter of the dev group: in the environment that runs the tests, else on the PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: it comes with the dev group (make venv)"
    return found


def _load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def _steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in doc["jobs"].items() for step in job.get("steps", [])]


def _action(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@")[0]


def _step(doc: dict[str, Any], job: str, name: str) -> dict[str, Any]:
    return next(s for s in doc["jobs"][job]["steps"] if s.get("name") == name)


def test_the_two_workflows_exist() -> None:
    assert [p.name for p in FILES] == ["deploy.yml", "pull-request.yml"]


def test_actionlint_with_shellcheck_finds_nothing() -> None:
    shellcheck = _tool("shellcheck")
    result = subprocess.run([_tool("actionlint"), "-shellcheck", shellcheck, "-pyflakes=", "-no-color",
                             *map(str, FILES)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_run_shellcheck_on_scripts() -> None:
    """actionlint skips shellcheck silently when it cannot run it: a script with a known finding proves it runs."""
    bad = "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo $FOO\n"
    result = subprocess.run([_tool("actionlint"), "-shellcheck", _tool("shellcheck"), "-pyflakes=", "-no-color",
                             "-"], input=bad, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "SC2086" in result.stdout, result.stdout + result.stderr


def test_zizmor_offline_finds_nothing() -> None:
    # Offline: no GitHub token, no network (the online audits need both).
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    result = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", "--color", "never", str(WORKFLOWS)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", path.read_text(), flags=re.MULTILINE)
    assert uses
    for ref, comment in uses:
        action, _, pin = ref.partition("@")
        assert SHA.fullmatch(pin), f"{ref}: pin actions by their full commit SHA"
        assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), f"{ref}: say the version it is, `# vX.Y.Z`"


def test_one_action_is_pinned_to_one_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in FILES:
        for ref, comment in re.findall(r"uses:\s*(\S+)\s*(#.*)$", path.read_text(), flags=re.MULTILINE):
            action, _, sha = ref.partition("@")
            pins.setdefault(action, set()).add(f"{sha} {comment.strip()}")
    assert {a: len(p) for a, p in pins.items()} == {a: 1 for a in pins}, pins


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_permissions_are_per_job_and_least_privilege(path: Path) -> None:
    doc = _load(path.name)
    assert doc["permissions"] == {}, "nothing at the workflow level: each job names what it needs"
    for job_id, job in doc["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{job_id}: declare permissions"
        assert perms.get("contents") == "read", job_id
        actions = {_action(s) for s in job.get("steps", [])}
        oidc = bool(actions & set(CREDENTIAL_ACTIONS))
        assert (perms.get("id-token") == "write") == oidc, f"{job_id}: id-token: write where, and only where, OIDC"
        comments = any(s.get("with", {}).get("comment-on-pr") is True for s in job.get("steps", [])) or any(
            "gh api" in s.get("run", "") and "comments" in s.get("run", "") for s in job.get("steps", []))
        assert (perms.get("pull-requests") == "write") == comments, f"{job_id}: pull-requests: write to comment only"
        assert set(perms) <= {"contents", "id-token", "pull-requests"}, f"{job_id}: {perms}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkouts_keep_no_credentials_and_scripts_expand_no_expressions(path: Path) -> None:
    doc = _load(path.name)
    for job_id, step in _steps(doc):
        if _action(step) == "actions/checkout":
            assert step["with"]["persist-credentials"] is False, job_id
        # Untrusted values (branch names, titles) reach scripts through env, never spliced into the script text.
        assert "${{" not in step.get("run", ""), f"{job_id}: {step.get('name', step.get('run'))}"
    for job_id, job in doc["jobs"].items():
        assert job.get("timeout-minutes"), f"{job_id}: a timeout"


def test_pull_request_workflow() -> None:
    doc = _load("pull-request.yml")
    assert set(doc["on"]) == {"pull_request"}, "never pull_request_target: PR code runs with a read-only token"
    assert "github.event.pull_request.number" in doc["concurrency"]["group"]
    assert doc["concurrency"]["cancel-in-progress"] is True
    jobs = doc["jobs"]
    assert set(jobs) == {"test", "plan", "pulumi-stacks", "pulumi-preview"}
    assert "needs" not in jobs["test"] and "needs" not in jobs["plan"], "test and plan run in parallel"

    test = jobs["test"]["steps"]
    assert _action(test[1]) == "actions/setup-python" and test[1]["with"]["python-version"] == "3.11"
    assert test[-1]["run"] == "make test"

    plan = jobs["plan"]["steps"]
    assert plan[0]["with"]["fetch-depth"] == 0, "full history: origin/<base branch> must exist"
    assert _step(doc, "plan", "make preview")["run"] == "make preview"
    build = _step(doc, "plan", "Build the plan comment")
    assert build["env"]["BASE_REF"] == "${{ github.base_ref }}"
    for command in ('cost --all --base "${base}" --format markdown --strict', "check --all",
                    'preview --all --base "${base}" --format markdown', "preview --help"):
        assert command in build["run"], command

    # The real preview: only where credentials are configured, OIDC, the policy pack, one comment per stack.
    picker = jobs["pulumi-stacks"]
    assert "vars.AWS_ROLE_ARN != ''" in picker["if"] and "vars.GCP_WORKLOAD_IDENTITY_PROVIDER != ''" in picker["if"]
    preview = jobs["pulumi-preview"]
    assert preview["needs"] == "pulumi-stacks"
    assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.pulumi-stacks.outputs.stacks) }}"
    steps = {_action(s): s for s in preview["steps"]}
    assert steps["aws-actions/configure-aws-credentials"]["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert steps["google-github-actions/auth"]["with"]["workload_identity_provider"] == (
        "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}")
    pulumi = steps["pulumi/actions"]["with"]
    assert pulumi["command"] == "preview" and pulumi["policyPacks"] == "policy" and pulumi["diff"] is True
    assert pulumi["comment-on-pr"] is True and pulumi["edit-pr-comment"] is True
    assert "matrix.stack" in pulumi["stack-name"] and pulumi["work-dir"] == "."


def test_deploy_workflow() -> None:
    doc = _load("deploy.yml")
    assert doc["on"]["push"] == {"branches": ["main"]}
    assert doc["on"]["workflow_dispatch"]["inputs"]["stack"]["options"] == ["all", *STACKS], (
        "the stacks one can deploy by hand are the stacks in stacks/")
    assert doc["concurrency"]["cancel-in-progress"] is False, "never cancel a running pulumi up"
    deploy = doc["jobs"]["deploy"]
    assert deploy["environment"] == "${{ matrix.stack }}", "each stack in the GitHub environment of its name"
    assert deploy["strategy"]["fail-fast"] is False
    steps = {_action(s): s for s in deploy["steps"]}
    pulumi = steps["pulumi/actions"]["with"]
    assert pulumi["command"] == "up" and pulumi["policyPacks"] == "policy"
    assert "matrix.stack" in pulumi["stack-name"]
    assert deploy["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    assert pulumi["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert set(CREDENTIAL_ACTIONS) <= set(steps)
    # The quota preflight runs with the cloud credentials, before `pulumi up`.
    names = [_action(s) or s.get("name") for s in deploy["steps"]]
    assert names.index("selfhost quota --check") < names.index("pulumi/actions")
    assert max(names.index(c) for c in CREDENTIAL_ACTIONS if c in names) < names.index("selfhost quota --check")
    preflight = deploy["steps"][names.index("selfhost quota --check")]
    assert preflight["run"] == '.venv/bin/selfhost quota "${STACK}" --check'


# The scripts, run for real: bash with GitHub's `-e`, in a scratch directory, with stand-ins for what they call.

def _bash(script: str, cwd: Path, env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    (tmp / "runner").mkdir(exist_ok=True)
    for name in ("output", "summary"):
        (tmp / "runner" / name).write_text("")
    full = {"PATH": os.environ["PATH"], "HOME": str(tmp), "RUNNER_TEMP": str(tmp / "runner"),
            "GITHUB_OUTPUT": str(tmp / "runner" / "output"), "GITHUB_STEP_SUMMARY": str(tmp / "runner" / "summary"),
            "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/selfhost-llm",
            "GITHUB_RUN_ID": "42", "GITHUB_WORKSPACE": str(cwd), **env}
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=60)


def _outputs(tmp: Path) -> dict[str, str]:
    lines = (tmp / "runner" / "output").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


# The CLI's stand-in: logs its arguments; `cost --all`/`preview --all` print a report per stack file, headed as the
# real CLI heads them (test_the_workflow_cuts_the_real_reports_at_their_headings), except for the stack in FAIL
# (an error on stderr, exit 2), with an unpriced item in the cost of the stack in UNPRICED (exit 5, as --strict
# does, whatever else failed), each report padded with PAD bytes; `preview --help` mentions --base when HAS_BASE
# is 1; anything else prints a line.
FAKE_SELFHOST = r"""#!/usr/bin/env bash
echo "$*" >>"$LOG"
case "$1 $2" in
  "preview --help") echo "Usage: selfhost preview [OPTIONS] [stack]"; [ "$HAS_BASE" = 1 ] && echo "  --base TEXT";
                    exit 0 ;;
  "check --all") echo "aws-dev: compliant (47 rules; 1 advisories, 0 exemptions)"; echo "x: advisory k8s-image-digest";
                 exit 0 ;;
  "cost --all" | "preview --all")
    what="plan"; [ "$1" = cost ] && what="cost estimate"
    rc=0; unpriced=0
    for file in stacks/Pulumi.*.yaml; do
      stack="${file#stacks/Pulumi.}"; stack="${stack%.yaml}"
      if [ "$stack" = "$FAIL" ]; then echo "Invalid configuration for stack '$stack'" >&2; rc=2; continue; fi
      echo "### selfhost-llm ${what}: \`$stack\`"
      if [ "$1" = cost ] && [ "$stack" = "$UNPRICED" ]; then
        echo "at least \$10.00 + 1 items unpriced"
        echo "error: $stack: 1 item(s) unpriced (at least \$10.00 + 1 items unpriced): x: no price" >&2; unpriced=1
      fi
      [ -n "$PAD" ] && head -c "$PAD" /dev/zero | tr '\0' 'x' && echo
      echo
    done
    [ "$unpriced" = 1 ] && exit 5
    exit "$rc" ;;
esac
echo "### $1 of \`$2\`"
exit 0
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    for stack in STACKS:
        shutil.copy(ROOT / "stacks" / f"Pulumi.{stack}.yaml", root / "stacks")
    (root / ".venv" / "bin").mkdir(parents=True)
    fake = root / ".venv" / "bin" / "selfhost"
    fake.write_text(FAKE_SELFHOST)
    fake.chmod(0o755)
    return root


def _build(project: Path, tmp: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], str, list[str]]:
    script = _step(_load("pull-request.yml"), "plan", "Build the plan comment")["run"]
    log = tmp / "selfhost.log"
    log.write_text("")
    base = {"BASE_REF": "main", "HEAD_SHA": "0123456789abcdef" * 2 + "01234567", "PREVIEW_OUTCOME": "success",
            "LOG": str(log), "HAS_BASE": "1", "FAIL": "", "UNPRICED": "", "PAD": ""}
    result = _bash(script, project, {**base, **env}, tmp)
    assert result.returncode == 0, result.stdout + result.stderr
    body = Path(_outputs(tmp)["body"]).read_text()
    return result, body, log.read_text().splitlines()


def test_plan_comment_has_costs_checks_and_plan_diffs(checkout: Path, tmp_path: Path) -> None:
    _, body, calls = _build(checkout, tmp_path)
    assert body.startswith(MARKER + "\n"), "the marker first: the next run finds the comment by it"
    assert "Commit `0123456789ab` against `origin/main`" in body
    assert "No mandatory violation in any stack. 1 advisories, 0 exemptions." in body
    # One command each for every stack: the base branch is previewed once, not once per stack and command.
    assert [c for c in calls if c.startswith(("cost ", "preview ")) and c != "preview --help"] == [
        "cost --all --base origin/main --format markdown --strict",
        "preview --all --base origin/main --format markdown"]
    for stack in STACKS:
        assert f"### selfhost-llm cost estimate: `{stack}`" in body and f"### selfhost-llm plan: `{stack}`" in body
    parts = sorted(p.name for p in (tmp_path / "runner" / "plan" / "parts").iterdir())
    assert parts == ["0-check.md", "0-quota.md", *[f"1-cost-{i:02d}-{s}.md" for i, s in enumerate(STACKS, 1)],
                     *[f"2-plan-{i:02d}-{s}.md" for i, s in enumerate(STACKS, 1)]]
    assert "quota --all --format markdown" in calls
    assert body.index("### Policy checks") < body.index("### Quotas needed") < body.index(
        "### selfhost-llm cost estimate") < body.index("### selfhost-llm plan")
    assert _outputs(tmp_path)["failed"] == "0"
    assert (tmp_path / "runner" / "summary").read_text() == body


def test_plan_comment_without_preview_base_in_the_cli(checkout: Path, tmp_path: Path) -> None:
    _, body, calls = _build(checkout, tmp_path, HAS_BASE="0")
    assert "this version of the CLI has no `selfhost preview --base`" in body
    assert not [c for c in calls if c.startswith("preview ") and c != "preview --help"]
    assert all(f"### selfhost-llm cost estimate: `{stack}`" in body for stack in STACKS)
    assert _outputs(tmp_path)["failed"] == "0"


def test_plan_comment_shows_a_failing_stack_and_fails_the_job(checkout: Path, tmp_path: Path) -> None:
    _, body, _ = _build(checkout, tmp_path, FAIL="aws-prod", PREVIEW_OUTCOME="failure")
    for command in ("cost --all --base origin/main --format markdown --strict",
                    "preview --all --base origin/main --format markdown"):
        assert f"**`selfhost {command}` exited 2.**\nNo report for: aws-prod.\n" in body
    assert body.count("Invalid configuration for stack 'aws-prod'") == 2
    assert "**`make preview` failed**" in body
    assert "### selfhost-llm cost estimate: `aws-dev`" in body, "the other stacks are still reported"
    assert "### selfhost-llm cost estimate: `aws-prod`" not in body
    assert _outputs(tmp_path)["failed"] == "1"


def test_plan_comment_shows_unpriced_items_and_fails_the_job(checkout: Path, tmp_path: Path) -> None:
    """`selfhost cost --strict` exits 5 when a total is only a lower bound: the report is shown with what is
    unpriced, and the job fails."""
    _, body, _ = _build(checkout, tmp_path, UNPRICED="aws-dev")
    assert "### selfhost-llm cost estimate: `aws-dev`\nat least $10.00 + 1 items unpriced" in body
    assert "**Unpriced items** (`selfhost cost --strict` exited 5)" in body and "x: no price" in body
    assert "No report for" not in body
    assert _outputs(tmp_path)["failed"] == "1"


def test_plan_comment_fits_in_a_comment(checkout: Path, tmp_path: Path) -> None:
    _, body, _ = _build(checkout, tmp_path, PAD="9000")
    summary = (tmp_path / "runner" / "summary").read_text()
    assert len(body) <= 65536 < len(summary), "the job summary has everything, the comment what fits"
    assert "Too long for one comment, left out here:" in body and "2-plan-11-onprem" in body
    assert "### Policy checks" in body, "the policy checks come first and always fit"


FAKE_GH = r"""#!/usr/bin/env bash
echo "$*" >>"$LOG"
if [ "$1 $2" = "api --paginate" ]; then printf '%s' "$EXISTING"; fi
"""


@pytest.mark.parametrize("existing", ["", "1001\n1002\n"], ids=["first-run", "later-run"])
def test_plan_comment_is_posted_once_then_edited_in_place(tmp_path: Path, existing: str) -> None:
    step = _step(_load("pull-request.yml"), "plan", "Post the plan comment, or edit the one posted before")
    assert step["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert step["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gh").write_text(FAKE_GH)
    (bindir / "gh").chmod(0o755)
    log = tmp_path / "gh.log"
    log.write_text("")
    body = tmp_path / "comment.md"
    body.write_text(MARKER + "\nplan\n")
    result = _bash(step["run"], tmp_path, {"PATH": f"{bindir}:{os.environ['PATH']}", "LOG": str(log),
                                          "EXISTING": existing, "PR_NUMBER": "7", "BODY": str(body)}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("api --paginate repos/acme/selfhost-llm/issues/7/comments --jq ")
    assert MARKER in calls[0] and "github-actions[bot]" in calls[0], "only our own comment, found by its marker"
    if existing:
        assert calls[1:] == [f"api --method PATCH repos/acme/selfhost-llm/issues/comments/1001 -F body=@{body} "
                             "--jq .html_url"]
    else:
        assert calls[1:] == [f"api --method POST repos/acme/selfhost-llm/issues/7/comments -F body=@{body} "
                             "--jq .html_url"]


needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="the stack pickers use jq (on GitHub's runners)")


@needs_jq
@pytest.mark.parametrize(("env", "picked"), [
    ({"AWS_ROLE_ARN": "arn:aws:iam::1:role/preview"}, ["aws-dev", "aws-pool", "aws-prod"]),
    ({"GCP_WORKLOAD_IDENTITY_PROVIDER": "projects/1/locations/global/workloadIdentityPools/gh/providers/gh"},
     ["gcp-pool", "gcp-prod", "gcp-tpu"]),
    ({"KUBERNETES_STACKS": "onprem, edge"}, ["edge", "onprem"]),
    ({"AWS_ROLE_ARN": "arn:aws:iam::1:role/preview", "HAS_BACKEND": "false"}, []),
], ids=["aws", "gcp", "kubernetes", "no-backend"])
def test_pulumi_preview_picks_the_stacks_with_credentials(checkout: Path, tmp_path: Path, env: dict[str, str],
                                                          picked: list[str]) -> None:
    step = next(s for s in _load("pull-request.yml")["jobs"]["pulumi-stacks"]["steps"] if s.get("id") == "pick")
    base = {"AWS_ROLE_ARN": "", "GCP_WORKLOAD_IDENTITY_PROVIDER": "", "KUBERNETES_STACKS": "", "HAS_BACKEND": "true"}
    result = _bash(step["run"], checkout, {**base, **env}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(_outputs(tmp_path)["stacks"]) == picked


@needs_jq
@pytest.mark.parametrize(("env", "picked"), [
    ({"REQUESTED": "all", "DEPLOY_STACKS": "aws-dev,aws-prod gcp-prod"}, ["aws-dev", "aws-prod", "gcp-prod"]),
    ({"REQUESTED": "all", "DEPLOY_STACKS": ""}, []),
    ({"REQUESTED": "edge", "DEPLOY_STACKS": "aws-dev"}, ["edge"]),
    ({"REQUESTED": "all", "DEPLOY_STACKS": "aws-dev nope"}, None),
], ids=["listed", "none-listed", "by-hand", "unknown-stack"])
def test_deploy_picks_the_listed_stacks(checkout: Path, tmp_path: Path, env: dict[str, str],
                                       picked: list[str] | None) -> None:
    step = next(s for s in _load("deploy.yml")["jobs"]["stacks"]["steps"] if s.get("id") == "pick")
    result = _bash(step["run"], checkout, env, tmp_path)
    if picked is None:
        assert result.returncode == 1 and "No stack nope" in result.stdout
    else:
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(_outputs(tmp_path)["stacks"]) == picked


def test_the_workflow_cuts_the_real_reports_at_their_headings(previews) -> None:
    """The plan job cuts `cost --all` and `preview --all --base` output into one part per stack at each report's
    heading: the real CLI's reports (the stand-in above only imitates them) start with the heading it looks for."""
    from selfhost.cost_report import markdown as cost_markdown
    from selfhost.cost_report import price_preview, to_json
    from selfhost.plan_diff import markdown as plan_markdown
    from selfhost.plan_diff import plan_diff

    from .test_cost import fake

    script = _step(_load("pull-request.yml"), "plan", "Build the plan comment")["run"]
    (awk_regex,) = re.findall(r"^\s*/(\^### selfhost-llm .+)/ \{$", script, re.MULTILINE)
    heading = re.compile(awk_regex)  # an ERE that Python's re reads alike: no awk-only syntax in it
    for stack, preview in previews.items():
        doc = preview.to_json()
        report = to_json(stack, price_preview(doc, fake))
        for text in (cost_markdown(report, report, "origin/main"), plan_markdown(plan_diff(doc, doc, "origin/main"))):
            first, *rest = text.splitlines()
            assert (m := heading.match(first)) and m.group(0).endswith(f"`{stack}`"), first
            assert not any(heading.match(line) for line in rest), "one heading per report"


def _needs_platform(condition: str) -> set[str]:
    """The platforms a step's `if:` runs it for, as `contains(fromJSON(steps.platforms.outputs.names), '<name>')`."""
    return set(re.findall(r"contains\(fromJSON\(steps\.platforms\.outputs\.names\), '([\w-]+)'\)", condition))


@needs_jq
@pytest.mark.parametrize("stack", STACKS)
def test_deploy_logs_in_to_the_platforms_the_stack_uses(tmp_path: Path, stack: str) -> None:
    """The deploy job asks `selfhost platforms <stack> --json` (the real CLI, on the real stack file) which platforms
    the stack uses, and each login step runs for its platform only: not by the stack's name."""
    from components.config import load_environment
    from components.targets.registry import PLATFORMS, kind_of
    from selfhost.project import load_project, stack_config

    deploy = _load("deploy.yml")["jobs"]["deploy"]
    names = [_action(s) or s.get("name") for s in deploy["steps"]]
    step = deploy["steps"][names.index("selfhost platforms")]
    assert step["id"] == "platforms" and step["env"]["STACK"] == "${{ matrix.stack }}"
    assert names.index("make preview") < names.index("selfhost platforms") < min(
        names.index(c) for c in CREDENTIAL_ACTIONS)
    result = _bash(step["run"], ROOT, {"STACK": stack}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = _outputs(tmp_path)
    used = json.loads(outputs["names"])

    config, secret_keys = stack_config(load_project(ROOT), stack)
    env = load_environment(stack, config, set(secret_keys))
    expected = {kind_of(t).platform for t in env.targets} | ({env.router_platform} if env.router_platform else set())
    assert used == [name for name in PLATFORMS if name in expected]
    assert outputs["quota_check"] == json.dumps(any(PLATFORMS[n].quota_reader() is not None for n in used))
    for name in used:  # the log says what each login needs
        assert f"{PLATFORMS[name].title}: {PLATFORMS[name].login}" in result.stdout

    # Every login step names the platforms it is for; none is picked by the stack's name.
    logins = {"aws-actions/configure-aws-credentials": "aws", "google-github-actions/auth": "gcp",
              "Kubeconfig": "kubernetes"}
    for key, platform in logins.items():
        condition = str(deploy["steps"][names.index(key)]["if"])
        assert "matrix.stack" not in condition, key
        assert _needs_platform(condition) == {platform}, key
        assert platform in PLATFORMS
    preflight = deploy["steps"][names.index("selfhost quota --check")]
    assert preflight["if"] == "steps.platforms.outputs.quota_check == 'true'"
