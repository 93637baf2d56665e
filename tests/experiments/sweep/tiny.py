"""A tiny experiment for the tests of the runner, the store and the executors (no JAX: the
machinery is what they test): point i stores i squared after `sleep` seconds, logging
"<pid> <i>" to $TINY_LOG before it runs. `fail_at` raises at that point; `kill_at` kills the
process running that point (once, or every time with kill_always)."""
import dataclasses
import os
import signal
import time
from pathlib import Path

from grdr.experiments.points import RecordPoint

NAME = "tiny"


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 8
    sleep: float = 0.05
    fail_at: int = -1
    kill_at: int = -1
    kill_always: bool = False


PRESETS = {"smoke": Config()}


def sweep(cfg):
    for i in range(cfg.n):
        yield RecordPoint.of(model="m", i=i, seed=0)


def run_group(cfg, points, out):
    results = []
    for p in points:
        i = p.record()["i"]
        log = Path(os.environ["TINY_LOG"])
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {i}\n")
        if i == cfg.fail_at:
            raise RuntimeError(f"planted failure at {i}")
        if i == cfg.kill_at:
            marker = log.with_suffix(f".killed{i}")
            if cfg.kill_always or not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(cfg.sleep)
        results.append(({"value": i * i}, {}))
    return results, cfg.sleep * len(points)


def report(df):
    return ""
