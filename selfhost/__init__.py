"""selfhost: the offline workflow around the Pulumi program (preview under Pulumi's mocks, and more)."""
