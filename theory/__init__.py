"""Closed forms and exact numerics for GR versus DR (docs/design.md, section 1), each checked numerically.

objectives: the global and sampled losses and their score-space gradients.
drift: expected sampled gradients and the sampled log-partition; confusers: who decides top-1 and their coverage.
fixed_point: population fixed points of the sampled loss (exact or sample averages), their closed forms
  (Fisher consistency of the standard logQ rule, the PMI target), the negatives-only rule's bias.
two_level: the two-level score profile (one query, k confusers) and its exact drift quantities beside the
  closed forms, with where the delta method breaks.
rank: Eckart-Young floors, sign-rank bounds, DR, rank-r bilinear and trie rank bounds, the row-shifted rank bound.
scaling: power-law fits with profile-likelihood intervals and a bootstrap over seeds, a robust fit in log
  space, and the out-of-sample check at the largest x.
checks: the `grdr check` battery.
"""
from grdr.theory.checks import CheckResult, format_table, run_checks
from grdr.theory.confusers import confuser_coverage, confusers
from grdr.theory.drift import (deficit_approximation, expected_sampled_grad, gradient_bias,
                          normalizer_deficit)
from grdr.theory.fixed_point import (fixed_point_closed_form, negatives_rule_two_documents, pmi_target,
                                population_fixed_point, population_gradient)
from grdr.theory.objectives import CORRECTIONS, candidate_logits, global_grad, global_loss, sampled_grad, sampled_loss
from grdr.theory.rank import (bilinear_eckart_young_floor, bilinear_rank_bound, dr_rank_bound, eckart_young_floor,
                         maxsim_rank_bound, numerical_rank, row_shifted_rank_bound, sign_rank_bounds, trie_rank_bound)
from grdr.theory.scaling import fit_power_law, holdout_check
from grdr.theory.two_level import (closed_forms, delta_boundary, delta_relative_error, exact_deficit, exact_gradient_bias,
                              two_level_scores, two_level_weights)

__all__ = [
    "CORRECTIONS", "global_loss", "global_grad", "sampled_loss", "sampled_grad", "candidate_logits",
    "expected_sampled_grad", "gradient_bias", "normalizer_deficit", "deficit_approximation", "confuser_coverage",
    "confusers",
    "population_fixed_point", "pmi_target", "fixed_point_closed_form", "negatives_rule_two_documents",
    "population_gradient",
    "two_level_weights", "two_level_scores", "exact_deficit", "exact_gradient_bias", "closed_forms",
    "delta_relative_error", "delta_boundary",
    "eckart_young_floor", "numerical_rank", "sign_rank_bounds", "trie_rank_bound", "dr_rank_bound",
    "row_shifted_rank_bound", "bilinear_rank_bound", "bilinear_eckart_young_floor", "maxsim_rank_bound",
    "fit_power_law", "holdout_check",
    "CheckResult", "run_checks", "format_table",
]
