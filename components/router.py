"""The router as the stack declares it on any platform: its callers' keys and its master key (generated, secrets),
the LiteLLM proxy's config for the targets it routes to (components/litellm.py), and the `RouterRuntime` the
router's platform runs (`Platform.declare_router`).

Each target's endpoint record says how it is called (`auth`): a key (our adapter, a Hugging Face endpoint) makes
an OpenAI-compatible backend; `aws-sigv4` a SageMaker backend the proxy signs for with its platform identity;
`gcp-oauth` a Vertex AI backend it calls with its service account's token. What a platform can reach was checked
with the config (`Platform.router_reaches`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import yaml

from . import litellm
from .catalog.serving import cpus_of
from .config import Environment
from .targets.base import Endpoint, RouterRuntime
from .targets.kubernetes import bytes_of
from .targets.registry import PLATFORMS

FILES_DIR = "/tmp/selfhost-router"
"""Where a cloud router's command writes its files: a writable volume the platform provides."""
ENV_PREFIX = "SELFHOST_ROUTER_"
"""The environment variables a cloud router's secrets arrive in (litellm.SecretSource.environment)."""
ADMIN = ":admin"
"""The admin key's place among the callers' in `router_runtime`'s answer: not a slug, so never a caller's id."""
CA_BUNDLE = "ca-bundle.pem"
CA_VARIABLE = f"{ENV_PREFIX}CAS"
"""The CA certificates of the routed targets that present their stack's own (the pools'), in PEM."""
# The files arrive as plain environment variables (not secret: the config names every key by reference); this
# writes each where the proxy reads it, then becomes the proxy, so signals reach it directly. The CA bundle is the
# image's public roots (certifi's, which its HTTP clients use) and the targets' CAs: LiteLLM takes one bundle for
# every backend (components/litellm.py litellm_config), and SageMaker's and Hugging Face's certificates are public.
_WRITE_FILES = (
    "import json, os, pathlib, sys\n"
    "names = json.loads(sys.argv[1])\n"
    f"folder = pathlib.Path({FILES_DIR!r})\n"
    "folder.mkdir(parents=True, exist_ok=True)\n"
    "for variable, name in names.items():\n"
    "    text = os.environ.pop(variable)\n"
    f"    if name == {CA_BUNDLE!r}:\n"
    "        import certifi\n"
    "        text = pathlib.Path(certifi.where()).read_text() + '\\n' + text\n"
    "    (folder / name).write_text(text)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)
PROXY_ENVIRONMENT = {
    # The model price map from the image, not fetched from GitHub at start; no admin UI (it needs a database the
    # router does without); production logging.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True", "DISABLE_ADMIN_UI": "True", "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOG": "INFO",
}


def _backend(endpoint: Endpoint, priority: int, resolved: dict[str, Any]) -> litellm.AnyBackend:
    """The proxy's backend for a target, from its endpoint record (`resolved`: its values, Outputs resolved)."""
    if endpoint.auth == "aws-sigv4":
        return litellm.SageMakerBackend(endpoint.name, resolved["endpointName"], endpoint.region, priority,
                                        served_model=endpoint.model)
    if endpoint.auth == "gcp-oauth":
        # projects/<project>/locations/<region>/endpoints/<id>; the record's OpenAI base is the endpoint's own
        # host (dedicated, or the Private Service Connect name) under v1beta1.
        project = str(resolved["resourceName"]).split("/")[1]
        return litellm.VertexBackend(endpoint.name, str(resolved["endpointId"]), project, endpoint.region, priority,
                                     api_base=resolved["baseUrl"])
    return litellm.Backend(endpoint.name, resolved["baseUrl"], endpoint.model, litellm.key_file(endpoint.name),
                           priority)


def _inputs(endpoint: Endpoint) -> dict[str, Any]:
    """What a backend needs of a record, as Inputs to resolve together."""
    if endpoint.auth == "aws-sigv4":
        return {"endpointName": endpoint.details["endpointName"]}
    if endpoint.auth == "gcp-oauth":
        return {"endpointId": endpoint.details["endpointId"], "resourceName": endpoint.details["resourceName"],
                "baseUrl": endpoint.openai_base_url}
    return {"baseUrl": endpoint.router_base_url or endpoint.openai_base_url}


def router_runtime(env: Environment, routes: Sequence[Endpoint]) -> tuple[RouterRuntime, dict[str, str]]:
    """The runtime of the stack's router (the proxy's config for `routes`, in order, with every secret named as the
    router's platform delivers it) and, for its callers' keys, which the platform's component generates: caller id
    -> that key's secret name (`RouterRuntime.generated`; the admin key, the proxy's master key, is `ADMIN`)."""
    spec, where = env.router, env.router_platform
    assert spec is not None and where is not None
    platform = PLATFORMS[where]
    source = (litellm.MOUNTED_SECRETS if platform.router_secrets_as == "files"
              else litellm.SecretSource.environment(ENV_PREFIX))
    name_of = (lambda secret: secret) if source.kind == "files" else source.variable  # noqa: E731
    keys = {c.id: name_of(litellm.caller_key_file(c.id)) for c in spec.callers}
    keys[ADMIN] = name_of(litellm.MASTER_KEY_FILE)
    secrets: dict[str, pulumi.Input[str]] = {}
    for e in routes:
        if e.auth in ("api-key", "hf-token"):
            assert e.router_key is not None, f"{e.name}: a routed target has a key for the router"
            secrets[name_of(litellm.key_file(e.name))] = pulumi.Output.secret(e.router_key)
    model = routes[0].model
    aliases = tuple(dict.fromkeys(m.name for m in env.models if m.id == model))
    callers = [litellm.Caller(c.id, c.requests_per_minute, c.tokens_per_minute, c.max_concurrent)
               for c in spec.callers]
    cas = [e.details["caCertificate"] for e in routes if e.details.get("caCertificate") is not None]

    def render(resolved: list[dict[str, Any]]) -> str:
        backends = [_backend(e, priority, values)
                    for priority, (e, values) in enumerate(zip(routes, resolved, strict=True), start=1)]
        config = litellm.litellm_config(model, backends, aliases=aliases, secrets=source, callers=callers,
                                        cooldown_seconds=spec.cooldown_seconds, num_retries=spec.retries,
                                        timeout_seconds=spec.timeout_seconds,
                                        ca_bundle_file=f"{FILES_DIR}/{CA_BUNDLE}" if cas else None)
        return yaml.safe_dump(config, sort_keys=False)

    config = pulumi.Output.all(*[pulumi.Output.from_input(_inputs(e)) for e in routes]).apply(render)
    texts: dict[str, pulumi.Input[str]] = {litellm.CONFIG_FILE: config,
                                            f"{litellm.ROUTER_MODULE}.py": litellm.router_module_text()}
    names = dict(litellm.FILE_VARIABLES)
    if cas:
        names[CA_VARIABLE] = CA_BUNDLE
        texts[CA_BUNDLE] = pulumi.Output.all(*cas).apply(lambda pems: "\n".join(p.strip() for p in pems) + "\n")
    files = {variable: texts[name] for variable, name in names.items()}
    proxy = ("litellm", "--config", f"{FILES_DIR}/{litellm.CONFIG_FILE}", "--host", "0.0.0.0", "--port",
             str(litellm.PORT), "--telemetry", "False")
    runtime = RouterRuntime(
        name=f"{env.name}-router", image=spec.image or litellm.IMAGE, port=litellm.PORT,
        command=("python3", "-c", _WRITE_FILES, json.dumps(names), *proxy),
        files=files, files_dir=FILES_DIR,
        secrets=secrets, generated=tuple(keys.values()),
        environment=PROXY_ENVIRONMENT, liveness_path=litellm.LIVENESS_ROUTE, readiness_path=litellm.READINESS_ROUTE,
        min_replicas=spec.replicas, max_replicas=spec.most_replicas, cpu=cpus_of(spec.resources.cpu),
        memory_mib=int(bytes_of(spec.resources.memory) / 2**20), timeout_seconds=spec.timeout_seconds,
        routes=tuple(routes), allowed_cidrs=tuple(spec.allowed_cidrs), certificate=spec.certificate,
        tags=env.all_tags)
    return runtime, keys
