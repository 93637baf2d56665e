"""JAX's persistent compilation cache, turned on in one place for the command line and for the Ray
workers, so a second run compiles almost nothing."""
from __future__ import annotations

import os

__all__ = ["enable", "from_environment", "current"]


def from_environment() -> str | None:
    """The folder GRDR_COMPILE_CACHE names (default: $XDG_CACHE_HOME/grdr/xla, or ~/.cache/grdr/xla);
    None where GRDR_COMPILE_CACHE=off (or 0, no, false, empty)."""
    path = os.environ.get("GRDR_COMPILE_CACHE")
    if path is not None and path.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    if path is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "grdr", "xla")
    return path


def enable(path: str | None) -> str | None:
    """Cache every compiled program (many are small) in `path`; nothing for None. Returns `path`."""
    if path:
        import jax

        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # every program: many are small
    return path


def current() -> str | None:
    """The folder this process caches in, if any (a driver hands it to its workers)."""
    try:
        import jax

        return jax.config.jax_compilation_cache_dir or None
    except (ImportError, AttributeError):
        return None
