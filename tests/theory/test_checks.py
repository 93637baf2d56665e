"""`grdr check`'s battery passes at its quick size, and its table reports failures."""
import pytest

from grdr.theory.checks import CheckResult, format_table, run_checks


def test_quick_battery_passes():
    results = run_checks(seed=0, quick=True)
    failed = [r for r in results if not r.passed]
    assert len(results) >= 17 and not failed, format_table(failed)
    assert all(r.error <= r.tolerance for r in results if r.quantity.startswith(("grad", "l_L", "global")))


def test_table_flags_failures():
    results = [CheckResult("ok", 1.0, 1.0, 0.0, 0.1, True), CheckResult("bad", 1.0, 2.0, 1.0, 0.1, False)]
    table = format_table(results)
    lines = table.splitlines()
    assert len(lines) == 3 and lines[0].split()[:2] == ["quantity", "closed"]
    assert lines[1].endswith("pass") and lines[2].endswith("FAIL")


def test_check_result_and_groups_validate():
    with pytest.raises(ValueError, match="tolerance"):
        CheckResult("x", 0.0, 0.0, 0.0, -1.0, True)
    with pytest.raises(ValueError, match="groups"):
        run_checks(groups=("nonsense",))
