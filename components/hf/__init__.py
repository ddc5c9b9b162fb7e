"""Hugging Face Inference Endpoints: a Pulumi dynamic resource over the `huggingface_hub` client (no official
Pulumi or Terraform provider exists), in endpoint.py, imported only when a stack declares an `hf-endpoint` target;
and the `huggingface` platform's tables (mocks, policies, online), which import neither."""
