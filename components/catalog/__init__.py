"""Data tables the config validation, the components and the sizing rely on.

Every table names its source and the date it was read. Code looks facts up here instead of branching on them.
"""
