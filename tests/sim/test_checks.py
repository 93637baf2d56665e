"""sim.checks: the real SeqGR reaches the sharp trie bound in `grdr check`'s model checks."""
from grdr.sim.checks import run_checks
from grdr.theory.checks import format_table


def test_model_checks_pass():
    results = run_checks(seed=0)
    assert len(results) == 3 and all(r.passed for r in results), format_table(results)
