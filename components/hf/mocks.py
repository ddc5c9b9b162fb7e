"""Our Hugging Face Inference Endpoint dynamic resource (components/hf/endpoint.py) under the offline preview
(components/mocking.py), as the Inference Endpoints API reports one.

Read through `Platform.mocks()` of the `huggingface` platform (components/targets/huggingface.py).
"""

from __future__ import annotations

from ..mocking import MockFn

RESOURCES: dict[str, MockFn] = {
    # Its id is "<namespace>/<name>"; once running the API reports its URL,
    # https://<id>.<region>.<vendor>.endpoints.huggingface.cloud, and the state.
    "pulumi-python:dynamic/hf:InferenceEndpoint": lambda c: (f"{c.inputs.get('namespace')}/{c.inputs.get('name')}", {
        "url": f"https://{c.hex(16, 'hf-endpoint')}.{c.inputs.get('region')}.{c.inputs.get('vendor')}"
               ".endpoints.huggingface.cloud",
        "status": "scaledToZero" if c.inputs.get("minReplica") == 0 else "running"}),
}
