"""Serving settings that a target kind (components/targets/) and the component it declares (components/aws/,
components/gcp/, components/k8s/) must agree on. They live here, below both, so that neither imports the other for
them: a kind may import its component (inside `declare`), never the reverse.

- Start-up bounds: SageMaker's ProductionVariant API reference gives ContainerStartupHealthCheckTimeoutInSeconds
  60..3600; the EC2 pools keep to the same range for their health check grace period and instance warm-up
  (components/targets/aws_pool.py). What a Vertex target's `startupTimeoutSeconds` admits, 60..7200
  (components/targets/vertex.py), bounds the Compute Engine pools' autohealing delay as well
  (components/targets/gcp_pool.py). A sized budget (components/sizing.py `startup_timeout_seconds`) is clamped
  to them.
- Kubernetes probes poll every PROBE_PERIOD_S; the startup probe's failure threshold is the sized budget divided
  by it (the vLLM production-stack's startup budget of failureThreshold x periodSeconds, components/catalog/
  kubernetes.py).
- CPU quantities as the Kubernetes API writes them (kubernetes.io/docs/reference/kubernetes-api/common-definitions/
  quantity): whole or fractional CPUs, or millicpus with `m`. The kind sizes and prices on them, the component
  sizes llama.cpp's threads on them.
"""

from __future__ import annotations

SAGEMAKER_TIMEOUT_BOUNDS_S = (60, 3600)
VERTEX_TIMEOUT_BOUNDS_S = (60, 7200)
# vLLM on TPU compiles the model's graphs with XLA before serving, "anywhere from a few minutes to an hour" with an
# empty cache (vllm-project/vllm docs/configuration/tpu.md, read 2026-12-08): a start-up budget takes the hour, the
# upper end, in place of the GPUs' warm-up.
XLA_COMPILE_S = 3600

PROBE_PERIOD_S = 10


def cpus_of(quantity: str) -> float:
    """CPUs in a Kubernetes CPU quantity: "8" -> 8.0, "3500m" -> 3.5."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
