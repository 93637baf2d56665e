"""The Ray executor against a real Ray instance started here (two CPUs, worker processes of its
own): the same records as a local run, a worker killed mid-task whose points run again without
anything lost or stored twice, and a task that can never finish reported as failed."""
import json
import os
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from grdr.experiments.sweep import claims, store  # noqa: E402
from grdr.experiments.sweep.runner import run_experiment  # noqa: E402

HERE = Path(__file__).resolve().parent  # tiny.py: the tiny experiment


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("ray")
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "TINY_LOG": str(log_dir / "log.txt"),
                                       "GRDR_COMPILE_CACHE": "off"}})
    os.environ["TINY_LOG"] = str(log_dir / "log.txt")
    sys.path.insert(0, str(HERE))
    yield log_dir
    ray.shutdown()
    sys.path.remove(str(HERE))


@pytest.fixture
def tiny(cluster):
    import importlib

    import tiny as module
    (cluster / "log.txt").unlink(missing_ok=True)
    for marker in cluster.glob("log.killed*"):
        marker.unlink()
    return importlib.reload(module)


def _log(cluster) -> list[tuple[int, int]]:
    path = cluster / "log.txt"
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()] if path.exists() else []


def _records(out, name) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (Path(out) / name).glob("*.json")}


def test_a_ray_run_stores_what_a_local_run_stores_bit_for_bit(tmp_path, cluster):
    from grdr.experiments import critical_n

    cfg = critical_n.PRESETS["smoke"]
    local = run_experiment(critical_n, cfg, tmp_path / "local", progress=False)
    remote = run_experiment(critical_n, cfg, tmp_path / "ray", progress=False, executor="ray")
    assert remote["ran"] == local["ran"] > 0 and remote["failed"] == 0
    a, b = _records(tmp_path / "local", "critical_n"), _records(tmp_path / "ray", "critical_n")
    assert a.keys() == b.keys() and len(a) > local["ran"]  # the searches' probe records too
    for rid in a:
        assert a[rid]["config"] == b[rid]["config"] and a[rid]["metrics"] == b[rid]["metrics"], rid


def test_a_killed_worker_s_points_run_again_and_nothing_is_lost_or_stored_twice(tmp_path, tiny, cluster):
    n = 6
    summary = run_experiment(tiny, tiny.Config(n=n, kill_at=3), tmp_path / "out", progress=False, executor="ray")
    assert (summary["ran"], summary["failed"]) == (n, 0)
    df = store.load(tmp_path / "out", "tiny")
    assert len(df) == n and dict(zip(df["i"], df["value"])) == {i: i * i for i in range(n)}
    runs = [i for _, i in _log(cluster)]
    assert sorted(runs) == sorted([*range(n), 3])  # the killed point twice (its retry), the others once
    assert len({pid for pid, i in _log(cluster) if i == 3}) == 2  # in two worker processes
    assert not list((tmp_path / "out" / "tiny" / ".claims").glob("*.json"))


def test_a_task_that_never_finishes_is_reported_with_its_points(tmp_path, tiny, cluster, capsys):
    cfg = tiny.Config(n=3, kill_at=1, kill_always=True)
    summary = run_experiment(tiny, cfg, tmp_path / "out", progress=True, executor="ray", max_retries=1)
    assert (summary["ran"], summary["failed"]) == (2, 1)
    [failure] = claims.failures(tmp_path / "out", "tiny")
    assert failure["config"]["i"] == 1 and failure["error"].startswith("WorkerCrashedError")
    assert "a Ray task failed: 1 point(s) of model m" in capsys.readouterr().out
