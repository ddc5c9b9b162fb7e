"""Azure: the foundation (resource group, network, Key Vault, storage, registry, Azure ML workspace) and the Azure ML
online endpoint, with their mocks, Terraform mapping, replacement and policy rules."""
