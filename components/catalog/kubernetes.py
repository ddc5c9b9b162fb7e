"""Facts the Kubernetes target relies on, with their sources (read 2026-12-01 unless said otherwise).

- Cluster versions: the minor versions whose OpenAPI schemas the `kubernetes-validate` package (1.37.0) ships and
  the tests validate every rendered manifest against. autoscaling/v2, policy/v1 and networking.k8s.io/v1 are GA in
  all of them, and `unhealthyPodEvictionPolicy` (PodDisruptionBudget) since 1.26.
- vLLM production-stack (vllm-project/production-stack, helm/values.yaml): probes on /health, a startup budget of
  failureThreshold x periodSeconds, a model-cache PVC, a Memory emptyDir for /dev/shm, KEDA on
  `vllm:num_requests_waiting` with threshold 5. It runs vLLM as root; opea-project/GenAIInfra runs it non-root
  with a read-only root file system by pointing the caches at writable volumes (the variables below).
- NVIDIA GPU Operator: Helm repository https://helm.ngc.nvidia.com/nvidia, chart `gpu-operator`; v25.10.1 is the
  newest release seen (NVIDIA/gpu-operator releases, renovate update to v25.10.1; v25.3.4 was 2025-09-18). Its
  driver, container toolkit and device plugin run privileged with host paths, so its namespace cannot be
  Pod Security `restricted`.
- Pod Security Standards (kubernetes.io/docs/concepts/security/pod-security-standards): `restricted` needs
  runAsNonRoot, allowPrivilegeEscalation false, capabilities drop ALL, seccomp RuntimeDefault, and only these
  volume types: configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret.
"""

from __future__ import annotations

# Kubernetes API value forms (kubernetes.io/docs/concepts/overview/working-with-objects/names; resource quantities):
# names, and quantities as our config fields take them (plain or milli CPUs, binary or decimal bytes).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"  # and at most 253 long
CPU_QUANTITY = r"^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$"
BYTES_QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"

SUPPORTED_VERSIONS = tuple(f"1.{minor}" for minor in range(29, 38))

GPU_OPERATOR_REPO = "https://helm.ngc.nvidia.com/nvidia"
GPU_OPERATOR_CHART = "gpu-operator"
GPU_OPERATOR_VERSION = "v25.10.1"

# The extended resource NVIDIA's device plugin advertises, and the taint GPU node pools commonly carry.
GPU_RESOURCE = "nvidia.com/gpu"

# Where vLLM, PyTorch, Triton and the Hub client write at run time (vllm#20127, llm-d#2216, GenAIInfra), as
# (variable, volume, path below it): compiled kernels and weights on the model-cache volume so a restart reuses
# them; the rest on the pod's scratch emptyDir.
VLLM_CACHES = (
    ("HF_HOME", "cache", "huggingface"),
    ("VLLM_CACHE_ROOT", "cache", "vllm"),
    ("TORCHINDUCTOR_CACHE_DIR", "cache", "torchinductor"),
    ("TRITON_CACHE_DIR", "cache", "triton"),
    ("FLASHINFER_WORKSPACE_BASE", "cache", "flashinfer"),
    ("NUMBA_CACHE_DIR", "tmp", "numba"),
    ("OUTLINES_CACHE_DIR", "tmp", "outlines"),
    ("XDG_CONFIG_HOME", "tmp", "config"),
    ("XDG_CACHE_HOME", "tmp", "cache"),
)

# The user our images run as (containers/*/Dockerfile: APP_UID).
APP_UID = 10001

# Pod Security Standards level per engine: both our images run non-root with a read-only root file system.
POD_SECURITY = {"vllm": "restricted", "llamacpp": "restricted"}

# KEDA's threshold on waiting requests per replica (production-stack's default).
QUEUE_DEPTH_THRESHOLD = 5
# How far past its batch a replica's engine may queue, in multiples of the scaling threshold. The adapter passes
# the engine that many requests beyond vLLM's max_num_seqs (it holds back the rest otherwise, and vLLM's waiting
# count, which KEDA scales on, would stay at zero), and answers 429 past it: a router's cue to send the request
# to its next target.
QUEUE_ALLOWANCE_THRESHOLDS = 4
