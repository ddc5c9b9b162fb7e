"""AWS components: network, encryption, artifacts, secrets, IAM and SageMaker endpoints."""
