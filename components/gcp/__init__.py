"""Google Cloud components: APIs, network, serving identity, secrets, Vertex AI endpoints and monitoring."""
