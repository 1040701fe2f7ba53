"""Opening PII tokens in what a test reads back (stored events hold them sealed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quanyu.identity.secrets import load_master_key
from quanyu.identity.tokens import Tokenizer


def opened(value: Any, data_dir: Path, tenant: str) -> Any:
    """``value`` with every sealed string in it opened with the tenant's key."""
    tokens = Tokenizer.derive(load_master_key(data_dir), tenant)

    def walk(x: Any) -> Any:
        if isinstance(x, str):
            return tokens.open(x)
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    return walk(value)
