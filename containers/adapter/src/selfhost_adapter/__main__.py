"""`selfhost-adapter [serve|sagemaker|vertex|openai|all] [--flags]`: the container entrypoint.

SageMaker starts a container as `<image> serve`, so `serve` (SageMaker's contract plus the OpenAI routes) is
the default. Exit codes: 2 for invalid settings, 1 when an adapter (or the Hugging Face token from Key Vault)
cannot be downloaded; on SIGTERM or SIGINT, once in-flight requests have drained and the engine has stopped,
uvicorn ends the process with that same signal (status 143 or 130).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import sys
from collections.abc import Sequence

import uvicorn

from .app import Adapter
from .azure_identity import install_hf_token
from .engines import fetch_adapters
from .fetch import FetchError
from .server import HeadLimits, Server, guarded_protocol
from .settings import SettingsError, parse_settings, tls_context

KEEP_ALIVE_SECONDS = 75  # longer than the idle timeouts of the load balancers in front (60 s on AWS)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = parse_settings(argv)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    try:
        if settings.hf_token_keyvault_url:  # Azure ML: the Hub token from Key Vault, into HF_TOKEN_PATH
            install_hf_token(settings.hf_token_keyvault_url, os.environ)
        # Before the engine starts, which loads them. A few MB each, and kept in the cache across restarts.
        settings = fetch_adapters(settings, os.environ)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    # Every client and engine connection is a file: take all the descriptors the container allows.
    with contextlib.suppress(ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    adapter = Adapter(settings)
    limits = HeadLimits(settings.max_header_bytes, settings.max_headers, settings.header_timeout_seconds)
    config = uvicorn.Config(
        adapter, host=settings.host, port=settings.port, lifespan="on", access_log=False,
        # Our own JSON access log replaces uvicorn's; its Server and Date headers are work nobody reads.
        server_header=False, date_header=False, log_config=None,
        loop="uvloop" if sys.platform != "win32" else "asyncio", ws="none",
        http=guarded_protocol(limits, lambda reason: adapter.usage.rejected.labels(reason).inc()),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # On SIGTERM: stop accepting, let in-flight requests finish for this long, then stop the engine.
        # uvicorn annotates it `int | None` but only passes it to asyncio.wait_for, which takes a float.
        timeout_graceful_shutdown=settings.drain_seconds,  # type: ignore[arg-type]
        backlog=2048,
        # HTTPS with the given certificate (TLS 1.2 at least); without one, plain HTTP as before.
        ssl_context_factory=(lambda config, default: tls_context(settings)) if settings.tls_cert_file else None)
    Server(config, on_drain=adapter.begin_drain).run()


if __name__ == "__main__":
    main()
