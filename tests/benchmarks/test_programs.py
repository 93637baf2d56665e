"""The program-count benchmark: per-group counts add up, and a width that trains inside another's
padded width (sim.widths) compiles no training program of its own."""
from grdr.benchmarks.programs import count_programs


def test_counts_add_up_and_a_padded_width_reuses_the_training_program(tmp_path):
    lines = []
    result = count_programs("capacity_dim", "smoke", str(tmp_path),
                            {"dims": [2, 3], "models": ["dr_table_global"], "seeds": [0, 1], "train": {"steps": 5}},
                            echo=lines.append)
    groups = result["groups"]
    assert [g["seeds"] for g in groups] == [2, 2] and len(lines) == 2
    assert result["count"] == sum(g["count"] for g in groups)
    assert "jit(one_seed)" not in groups[1]["names"]  # D = 3 trains inside D = 2's padded width: no new step
    assert all(n.startswith("jit(") for n in result["names"])
