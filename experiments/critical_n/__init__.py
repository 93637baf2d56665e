"""Free embeddings of dimension d solve all k = 2 top-2 queries only up to a critical n(d), within ±3 of Weller et al.'s measured Table 6 (median over seeds, each its own search); SeqGR at hidden width d goes further.

MaxSim (`dr_maxsim`) is compared with DR at equal d per vector and at matched parameters.

The free-embedding protocol of Weller et al. 2025 (docs/design.md, section 1, "The combinatorial limit"),
with the settings of their published script (google-deepmind/limit, `free_embedding_experiment.py`)
as defaults, every one a Config field stored in each probe record: every pair of n documents is a
query; free query and document vectors are optimised directly with full-batch, full-softmax
InfoNCE (temperature 0.1, Adam lr 0.01, unit norm after every step) for up to 100,000 steps, early
stopped when the loss has not fallen 1e-5 below its best for 1,000 steps; n is solved when top-2
accuracy (argsort, ties to the lower index) reaches 1, read every 50 steps and on the final tables.
The strict criterion (margin > 0) is stored beside LIMIT's and can drive the search instead
(`success`). Their search: from n0, gallop by +1, +2, +4, ... while solved (or -1, -2, -4, ...
while failed), binary search between the last solved and the first failed n, then a sweep of
n* - 4 ... n* + 5 around the result n*; critical n is n*, and the sweep's outcome and every
non-monotone outcome (a solved n above a failed one) are stored beside it.

Seeds are replicates. Each seed runs its own search: its own initial draws (seed 42 draws LIMIT's
bit for bit), for SeqGR its own random docid tree, and its own galloping, binary search and sweep,
decided by its own outcomes only; it gives its own n(d), and the reported n(d) is the median over
seeds. There are no restarts (no "solved when any seed solves"). Seeds run one after another, each
probe through the compiled program of its search's reach; vmapping the seeds of a probe into one
program was measured and not kept: on 2 CPU cores the step cost at the n that dominate (d = 12, 16)
grows about linearly with the seeds (d = 16, n = 81: 5.9 ms a step for 3 seeds side by side, 2.1 ms
for one),
and a joint loop runs to its slowest seed and compiles once per number of seeds (d = 12's searches:
0.82 ms per seed-step side by side against 0.64 ms one after another; both under load).

The reference is Weller et al.'s measured n(d) (arXiv 2508.21038, revised, Appendix G, Table 6:
10, 19, 28, 47, 79, 120, 296 at d = 4, 6, 8, 12, 16, 20, 32; `WELLER_TABLE6`), not their cubic fit
n(d) = -10.5322 + 4.0309 d + 0.0520 d^2 + 0.0037 d^3, which misfits small d (6.7 at d = 4 against
their 10) and is drawn beside the table as their fit. Agreement is a tolerance fixed in advance from
the scatter of an independent replication (within about 3 of the table at d <= 16): |median over
seeds - Table 6| <= 3 at each d of the table searched, reported per d as "agrees within ±3" or
"does not agree". It is not a hypothesis test: its findings say so in their text and are not in the
Holm family of statistical claims (experiments.verdict.findings.Finding has no field for it).

Comparisons between models read one effect per seed: SeqGR at hidden width d against DR at d,
MaxSim (m free vectors per query, m' per document, each of dimension d, scored by
sum_i max_j <q_i, d_j> / temperature, with DR's loss, optimiser, budget, criterion and padding) against
DR at the same d (m d parameters per query and m' d per document, against DR's d and d) and at
matched parameters (DR at m d, for m = m'). The effect of a seed is the mean over the d both searched
of that seed's difference (model minus DR, same seed), and the verdict reads the 95% t-interval over
seeds (experiments.verdict.stats.effect_verdict): the seed is what is redrawn independently, whereas the d
of one seed are not replicates of one effect (the gap grows with d) and were never exchangeable
pairs; one claim per comparison also keeps the Holm family small. The per-d differences of every
seed and their medians are in the report beside the verdict, so a sign change across d stays
visible. Only seeds that searched every d of a comparison count. SeqGR's score is not a rank-(d + 1)
form, nor is MaxSim's, so the sign-rank bound need not bind them; the bounds of the all-pairs qrel
matrix (theory.sign_rank_bounds) are stored with every probe, and n(d) is fitted by a cubic
(numpy.polyfit, degree 3, least squares over every seed's critical n). DR's galloping starts below
Weller et al.'s cubic (n0 = start_fraction x cubic(d)), SeqGR's at gr_start_per_dim x d, MaxSim's at
maxsim_start_per_dim x d (each with its own n_max); for a monotone outcome the result does not
depend on n0, only the number of probes does (near n*, outcomes need not be monotone: the boundary
is chaotic in the seed).

Records: the sweep has one point per search (model, d, seed; for MaxSim also m, m'), whose record
(`record = "critical"`) holds that seed's critical_n (censored when n_max itself was solved), the
largest solved n, the non-monotone count, the probes and the steps they used, and Weller et al.'s
Table 6 value and cubic at d; while it runs, the search writes one record per (model, d, n, seed)
probe (`record = "probe"`: top-2 accuracy, both success criteria, margin, steps and why training
stopped, loss, bounds and the whole budget), so an interrupted search resumes at its first unstored
probe and the figure can show every seed's search. Every probe of a search is padded to the search's
reach (`limit_search.gallop_reach`: n0 + 7, the third galloping step up, or the galloping step
beyond a probe past it; SeqGR's no further than the tree of its docid length), so that a (model, d)
compiles one training program for all its probes and seeds unless a search gallops past n0 + 7
(results equal the unpadded ones up to float rounding).

Quick preset: 12 seeds (42, 0, ..., 10; the comparisons are sign tests over seeds, which decide nothing
below about 12 under Holm's correction over the report's 52 claims); DR at d = 2, 3, 4, 6, 8, 12, 16 (the d of Table 6 up to 16, and
the DR partners of the comparisons: d = 2, 3 for SeqGR's widths and MaxSim's same d, 4, 6, 8 for
MaxSim's matched parameters), SeqGR at widths 2 and 3, MaxSim (m = m' = 2) at d = 2, 3, 4. It skips
LIMIT's final sweep (sweep_below = sweep_above = 0): the sweep never changes n*, it only looks for
non-monotone outcomes, and it was about a third of the probes; the paper preset keeps it.

Command:  grdr run critical_n --preset quick --out results
The quick preset's time is in benchmarks/README.md; its n(d), comparisons and verdicts are in the report.
"""
from __future__ import annotations

from grdr.experiments.critical_n.config import AXES, NAME, PRESETS, Config, pad_n, start_n, sweep
from grdr.experiments.critical_n.report import (TOLERANCE_NOTE, findings, maxsim_comparison, model_pairs, predictions,
                                           report, run_seconds, seed_effects)
from grdr.experiments.critical_n.search import run_group
from grdr.experiments.limit_search import (MAXSIM, TABLE6_TOLERANCE, WELLER_TABLE6, critical_from, cubic_fit, next_n,
                                      non_monotone, series_label, series_of, table6_agreement, weller_cubic)

__all__ = ["NAME", "AXES", "Config", "PRESETS", "sweep", "run_group", "start_n", "pad_n", "findings", "predictions",
           "report", "run_seconds", "model_pairs", "seed_effects", "maxsim_comparison", "TOLERANCE_NOTE", "MAXSIM",
           "TABLE6_TOLERANCE", "WELLER_TABLE6", "critical_from", "cubic_fit", "next_n", "non_monotone",
           "series_label", "series_of", "table6_agreement", "weller_cubic"]
