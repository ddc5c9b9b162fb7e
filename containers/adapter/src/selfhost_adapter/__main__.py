"""`selfhost-adapter [serve|sagemaker|vertex|openai|all] [--flags]`: the container entrypoint.

SageMaker starts a container as `<image> serve`, so `serve` (SageMaker's contract plus the OpenAI routes) is
the default. Exit codes: 2 for invalid settings; on SIGTERM or SIGINT, once in-flight requests have drained
and the engine has stopped, uvicorn ends the process with that same signal (status 143 or 130).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import uvicorn

from .app import Adapter
from .settings import SettingsError, parse_settings

KEEP_ALIVE_SECONDS = 75  # longer than the idle timeouts of the load balancers in front (60 s on AWS)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = parse_settings(argv)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    adapter = Adapter(settings)
    config = uvicorn.Config(
        adapter, host=settings.host, port=settings.port, lifespan="on", access_log=False,
        # Our own JSON access log replaces uvicorn's; its Server and Date headers are work nobody reads.
        server_header=False, date_header=False, log_config=None,
        loop="uvloop" if sys.platform != "win32" else "asyncio", http="httptools",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # On SIGTERM: stop accepting, let in-flight requests finish for this long, then stop the engine.
        timeout_graceful_shutdown=settings.drain_seconds,
        backlog=2048)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
