"""Names Azure requires to be unique beyond the stack (pure: no provider SDK)."""

from __future__ import annotations

import hashlib
import re

SUFFIX = 6


def global_name(env: str, subscription_id: str, limit: int, dashes: bool, role: str = "") -> str:
    """A name for a resource whose name is global across Azure (a vault, a storage account, a registry) or across a
    region (an online endpoint: its scoring host is `<name>.<region>.inference.ml.azure.com`): the stack's name (and
    `role`) in the characters allowed, and 6 hex digits of the subscription, stack and role, so two subscriptions'
    stacks of the same name do not collide."""
    suffix = hashlib.sha256(f"{subscription_id}/{env}/{role}".encode()).hexdigest()[:SUFFIX]
    text = f"{env}-{role}" if role else env
    base = re.sub(r"[^a-z0-9-]" if dashes else r"[^a-z0-9]", "", text.lower()).strip("-") or "selfhost"
    if not base[0].isalpha():
        base = f"s{base}"
    return f"{base[:limit - SUFFIX - (1 if dashes else 0)].rstrip('-')}{'-' if dashes else ''}{suffix}"
