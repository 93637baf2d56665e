"""How a sweep's points become groups (the seeds trained together under one vmap), on its own so that
what reads the groups without running them (the dry run's cost model, which the experiments consult)
imports no executor."""
from __future__ import annotations

from collections import OrderedDict

__all__ = ["groups"]


def groups(module, cfg) -> list[list]:
    """The sweep's points, grouped by everything but the seed (one vmapped training each). A Config
    with `max_group_seeds` > 0 has each group cut into runs of at most that many seeds, so that the
    largest group need not bound a sweep on many workers (--executor ray); a point's record and run_id
    do not depend on the group it trains in."""
    found: OrderedDict = OrderedDict()
    for point in module.sweep(cfg):
        key = point.group_key()
        found.setdefault(key, []).append(point)
    cap = int(getattr(cfg, "max_group_seeds", 0) or 0)
    if cap <= 0:
        return list(found.values())
    return [g[i:i + cap] for g in found.values() for i in range(0, len(g), cap)]
