"""Serving target kinds: one module each, behind one contract (base.py), listed in one registry (registry.py).

How to add a kind: docs/target-kinds.md.
"""
