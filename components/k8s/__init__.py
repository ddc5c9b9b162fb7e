"""Kubernetes: the cluster (provider and add-ons) and one model served on it."""
