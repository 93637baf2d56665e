"""theory_curves' report section: each figure with its caption (the formula drawn and its source), the
delta method's boundary table, and the key numbers of every family, read from the records alone."""
from __future__ import annotations

import math

import numpy as np

from grdr.experiments.theory_curves.config import MODELS, SOURCE

__all__ = ["report", "boundary_table"]


def _family(df, name):
    return df[df["family"] == name] if "family" in df else df.iloc[0:0]


def boundary_table(df) -> str:
    """Rows: peakedness m; columns: K; cells: N/K at which the delta method's relative error passes the threshold."""
    b = _family(df, "deficit_boundary")
    if b.empty:
        return "(no boundary records)"
    Ks = sorted(int(k) for k in set(b["num_negatives"]))
    lines = ["| share m of the mass on the confuser | " + " | ".join(f"K = {k}" for k in Ks) + " |",
             "|---" * (len(Ks) + 1) + "|"]
    for share, g in b.groupby("share"):
        cells = []
        for k in Ks:
            r = g[g["num_negatives"] == k]
            if r.empty:
                cells.append("")
                continue
            r = r.iloc[0]
            if r["censored_high"] > 0:
                cells.append(f"> {r['n_max'] / k:,.3g} (never)")
            elif r["censored_low"] > 0:
                cells.append(f"<= {r['boundary_n'] / k:,.3g} (from the start)")
            else:
                cells.append(f"{r['boundary_n'] / k:,.3g}")
        lines.append(f"| {share:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(x, spec=".3g"):
    return "" if x is None or not np.isfinite(x) else format(x, spec)


_RULES = {"none": "plain", "logq": "standard logQ", "logq_negatives": "negatives-only logQ"}


def fixed_point_lines(fp, label) -> list[str]:
    """The fixed-point figure's caption, its table and what masking the accidental hits costs."""
    Ns = sorted(int(n) for n in set(fp["n_docs"]))
    K = int(fp["num_negatives"].iloc[0])
    lines = ["![theory_fixed_point](figures/theory_fixed_point.png)", "",
             "**Figure: population fixed points.** KL(p* || softmax s*) of the free scores s* minimising the "
             "expected sampled loss E_{d+ ~ p*} E_S[l_L] against N, for one query with Zipf p*, K = "
             f"{K}. Filled markers: accidental hits of d+ kept (as sim.train does); hollow: masked. Where a closed "
             "form exists (hits kept: log p* for the standard logQ rule with any proposal and for plain uniform "
             "sampling, the PMI target log p* - log q for plain sampling with proposal q; "
             "theory.fixed_point_closed_form, held to 1e-10 by exact enumeration in `grdr check`) it is drawn; "
             "a KL of exactly 0 sits on the axis floor. Elsewhere (the negatives-only rule; masked hits) the value "
             "is a sample-average fixed point (theory.population_fixed_point, L-BFGS in float64) at S and 4 S "
             "negative sets per positive, extrapolated to S -> infinity as a + b / S (an estimate). Source: "
             + SOURCE["fixed_point"] + ".", "",
             "| variant | rule | hits | " + " | ".join(f"N = {n:,}" for n in Ns) + " | how |",
             "|---" * (len(Ns) + 4) + "|"]
    order = {m: i for i, m in enumerate(MODELS)}
    keys = sorted({(r.model, r.correction, r.sampling) for r in fp.itertuples()},
                  key=lambda k: (order.get(k[0], 99), k[1], k[2]))
    for model, correction, sampling in keys:
        g = fp[(fp["model"] == model) & (fp["correction"] == correction) & (fp["sampling"] == sampling)]
        kl = g.groupby("n_docs")["kl"].mean()
        how = "closed form" if (g["closed_form"] > 0).all() else "sample average, extrapolated in 1/S"
        lines.append(f"| {label(model)} | {_RULES.get(correction, correction)} | {sampling} | "
                     + " | ".join(_fmt(kl.get(n)) for n in Ns) + f" | {how} |")
    lines.append("")
    std = fp[(fp["correction"] == "logq") & (fp["sampling"] == "mask")]
    if not std.empty:
        kl = std.groupby("n_docs")["kl"].mean()
        lines.append(f"- Masking the accidental hits biases the standard rule by a KL of {_fmt(kl.iloc[0])} at "
                     f"N = {int(kl.index[0]):,} and {_fmt(kl.iloc[-1])} at N = {int(kl.index[-1]):,} (K = {K}; "
                     "mean over its proposals; sample-average estimates whose noise is of the same order), against "
                     "exactly 0 with hits kept; exact enumeration at N <= 10 (tests/theory/test_fixed_point.py) shows "
                     "this bias growing with K and shrinking with N, an O(K/N) effect.")
    old = fp[(fp["correction"] == "logq_negatives") & (fp["sampling"] == "keep")]
    if not old.empty:
        for model, g in old.groupby("model"):
            kl = g.groupby("n_docs")["kl"].mean()
            lines.append(f"- {label(model)}, negatives-only rule: KL {_fmt(kl.iloc[0])} at N = "
                         f"{int(kl.index[0]):,}, {_fmt(kl.iloc[-1])} at N = {int(kl.index[-1]):,}: the drift of "
                         "that biased estimator, absent from the standard rule.")
    lines.append("")
    return lines


def report(df) -> str:
    """The section: each figure with its caption (the formula drawn and its source), the boundary of
    the delta method, and the key numbers of every family."""
    from grdr.experiments.variants import label

    lines = ["Closed forms of theory/ drawn against their exact and Monte Carlo values (no training; every "
             "number below is a stored record, the figures read nothing else).", ""]
    d = _family(df, "deficit")
    if not d.empty:
        share = d.loc[d["profile"] == "peaked", "share"].dropna()
        m = float(share.iloc[0]) if len(share) else math.nan
        mc = d[d["mc_samples"] > 0]
        agree = {n: np.abs(mc[f"mc_{n}"] - mc[f"exact_{n}"])
                 <= 4 * mc[f"mc_{n}_se"] + 1e-9 * (1 + np.abs(mc[f"exact_{n}"])) for n in ("plain", "logq")}
        rare = mc[~(agree["plain"] & agree["logq"])]
        rare_note = ""
        if len(rare) and "mc_expected_hits" in rare:
            gap = max(np.max(np.abs(rare[f"mc_{n}"] - rare[f"exact_{n}"])) for n in ("plain", "logq"))
            at_n = ", ".join(f"{int(x):,}" for x in sorted(set(rare["n_docs"])))
            rare_note = (f" The others are the points (N = {at_n}) "
                         f"where the {int(mc['mc_samples'].max()):,} samples expected "
                         f"{_fmt(rare['mc_expected_hits'].min(), '.2g')}-{_fmt(rare['mc_expected_hits'].max(), '.2g')} "
                         "samples holding the confuser, so the estimate and its standard error (often 0) rest on a "
                         f"sample or two at most and miss the rare term (by at most {_fmt(gap, '.1e')} nats).")
        enum = d[d["enumerated_plain"].notna()]
        enum_err = max((np.max(np.abs(enum[f"enumerated_{n}"] - enum[f"exact_{n}"])) for n in ("plain", "logq")),
                       default=math.nan)
        flat = d[d["profile"] == "flat"]
        lines += ["![theory_deficit](figures/theory_deficit.png)", "",
                  "**Figure: normalizer deficit.** E log Z_S - log Z against N for K uniform negatives (drawn with "
                  "replacement from the N-1 documents other than d+). Top left: uncorrected, "
                  "Z_S = e^{s+} + sum_i e^{s_i}; the closed form drawn is -log((N-1)/K). Top right: with logQ, "
                  "Z_S = e^{s+} + (N-1)/K sum_i e^{s_i}; the "
                  "closed form drawn is the delta method -[(N-1) sum_{j!=+} p_j^2 - (1-p_+)^2] / (2K). Exact: a "
                  "binomial sum over the number of draws that hit the confuser (checked against theory.drift's "
                  "enumeration of all (N-1)^K samples where that is small); Monte Carlo: theory.normalizer_deficit "
                  f"({int(mc['mc_samples'].max()) if len(mc) else 0:,} samples, 95% intervals). Profiles: flat (every "
                  f"document weight 1) and peaked (one confuser holds a share m = {m:g} of the negatives' mass, the "
                  "others weight 1; d+ has the mean weight). Bottom left: the delta method's relative error "
                  "|delta - exact| / |exact| against N/K, shaded above the threshold; bottom right: the boundary in "
                  "(N/K, m). Source: " + SOURCE["deficit"] + ".",
                  "",
                  f"- Monte Carlo within 4 standard errors of the exact value: {int(agree['plain'].sum())} of "
                  f"{len(mc)} points uncorrected, {int(agree['logq'].sum())} of {len(mc)} with logQ.{rare_note} "
                  f"Theory's enumeration against the binomial sum: {len(enum)} points, largest difference "
                  f"{_fmt(enum_err, '.1e')}.",
                  "- Flat profile: with logQ Z_S = Z for every sample (deficit 0, and the delta method gives 0); "
                  "uncorrected the exact deficit is log((K+1)/N), so -log((N-1)/K) is off by at most "
                  f"{_fmt(flat['abs_error_plain'].max())} nats (log(1 + 1/K) at K = "
                  f"{int(flat.loc[flat['abs_error_plain'].idxmax(), 'num_negatives']) if len(flat) else 0}).",
                  ]
        peaked = d[d["profile"] == "peaked"]
        if not peaked.empty:
            big = peaked.loc[peaked["n_docs"].idxmax()]
            lines.append(f"- Peaked profile, uncorrected: -log((N-1)/K) is off by up to "
                         f"{_fmt(peaked['abs_error_plain'].max())} nats (about -log(1 - m) = {-math.log(1 - m):.3f}, "
                         "the mass a sample misses when it misses the confuser). With logQ at N = "
                         f"{int(big['n_docs']):,}, K = {int(big['num_negatives'])}: exact {_fmt(big['exact_logq'])}, "
                         f"delta method {_fmt(big['delta_logq'])} nats.")
        b = _family(df, "deficit_boundary")
        if not b.empty:
            thr = float(b["threshold"].iloc[0])
            lines += ["", f"Boundary of the delta method: N/K beyond which its relative error exceeds {thr:.0%} "
                      "(scanned on the exact values, from the N at which the confuser is at least as heavy as the "
                      "other documents):", "", boundary_table(df), ""]
            at = b[(b["censored_low"] == 0) & (b["censored_high"] == 0)].assign(
                c_over_k=lambda x: (x["boundary_n"] - 2) * x["share"] / ((1 - x["share"]) * x["num_negatives"]))
            light = at[(at["share"] <= 0.03) & (at["num_negatives"] >= 16)]
            if len(light):
                lines += [f"- For m <= 0.03 and K >= 16 the boundary is where the confuser's weight c reaches "
                          f"{light['c_over_k'].min():.2f}-{light['c_over_k'].max():.2f} K (a typical document weighs "
                          "1): the delta method holds only while no single draw can weigh a sizeable part of the "
                          "K-draw sum; at m >= 0.3 it breaks already at N of a few K.", ""]
    cov, grad = _family(df, "coverage"), _family(df, "gradient")
    if not cov.empty or not grad.empty:
        lines += ["![theory_gradient](figures/theory_gradient.png)", "",
                  "**Figure: confuser coverage and gradient bias.** Left: the chance that K uniform negatives hold at "
                  "least one of k confusers, exact 1 - (1 - k/(N-1))^K (theory.confuser_coverage) and the closed form "
                  "K k / N, beside a simulation (95% intervals). Right: |E_S grad l_L - grad l_G| (score space) on the "
                  "peaked profile, uncorrected and with logQ: exact (binomial sum over the confuser hits) and "
                  "Monte Carlo (theory.gradient_bias; the norm carries the noise sum(se^2), shown as its interval). "
                  "Source: " + SOURCE["gradient"] + ".", ""]
        if not cov.empty:
            K = int(cov["num_negatives"].iloc[0])
            z = np.abs(cov["mc"] - cov["exact"]) / cov["mc_se"]
            worst = cov.loc[cov["rel_error_closed"].idxmax()]
            ordered = cov.sort_values("closed_form")
            broken = ordered[ordered["rel_error_closed"] > 0.1]
            holds = ordered["closed_form"] < broken["closed_form"].min() if len(broken) else ordered["closed_form"] > 0
            lines.append(f"- Coverage (K = {K}): simulation within 4 standard errors of the exact value at "
                         f"{int(np.sum(z <= 4))} of {len(cov)} points; K k / N is within 10% of exact at every point "
                         f"with K k / N <= {_fmt(ordered.loc[holds, 'closed_form'].max())} (first off by more than "
                         f"10% at K k / N = {_fmt(broken['closed_form'].min())}), and off by "
                         f"{worst['rel_error_closed']:.0%} at "
                         f"N = {int(worst['n_docs']):,}, k = {int(worst['confusers'])}.")
        if not grad.empty:
            for corrected, g in grad.groupby("corrected"):
                g = g.sort_values("n_docs")
                mcg = g[g["mc_samples"] > 0]
                ok = int(np.sum(np.abs(mcg["mc_norm"] - mcg["exact_norm"]) <= 4 * mcg["mc_norm_se"]))
                lines.append(f"- Gradient bias, {'logQ' if corrected else 'uncorrected'}: exact "
                             f"{_fmt(g['exact_norm'].iloc[0])} at N = {int(g['n_docs'].iloc[0]):,} -> "
                             f"{_fmt(g['exact_norm'].iloc[-1])} at N = {int(g['n_docs'].iloc[-1]):,}, against the "
                             f"confuser's global gradient k c / Z = {_fmt(g['global_confuser_grad'].iloc[-1])} that a "
                             f"sample without it lacks (global gradient norm {_fmt(g['global_grad_norm'].iloc[-1])}); "
                             f"Monte Carlo within 4 standard errors at {ok} of {len(mcg)} points.")
        lines.append("")
    fp = _family(df, "fixed_point")
    if not fp.empty and "correction" in fp:
        lines += fixed_point_lines(fp, label)
    floor, trie = _family(df, "rank_floor"), _family(df, "rank_trie")
    if not floor.empty or not trie.empty:
        lines += ["![theory_rank](figures/theory_rank.png)", "",
                  "**Figure: rank.** Left: the Eckart-Young floor min over rank-D S and row shifts c of "
                  "||A* - S - c 1^T||_F^2 = sum_{i > D} sigma_i(A* P)^2 (theory.eckart_young_floor), relative to "
                  "the centred energy, for sim.corpus's true log-posterior A* of rank R: it falls to rounding at "
                  "D = R. Right: the trie rank bounds against H (theory.trie_rank_bound): over every prefix node, "
                  "min(#leaves, sum_pi min(H + 1 + beta, b_pi)) (dotted), and the sharper last-level form beta + "
                  "sum_pi min(l_pi, H + 1) (solid), beta = 1 (output bias); points: the numerical rank of the "
                  "real SeqGR's log-probability matrix. Source: " + SOURCE["rank"] + ".", ""]
        for rank, g in floor.groupby("latent_rank"):
            g = g.set_index("dim")["floor_rel"]
            lines.append(f"- R = {int(rank)}: relative floor {_fmt(g.get(rank - 1))} at D = R - 1, "
                         f"{_fmt(g.get(rank))} at D = R, {_fmt(g.get(rank + 1))} at D = R + 1.")
        measured = trie[trie["measured_rank"].notna()] if not trie.empty else trie
        if not measured.empty:
            hit = measured["measured_rank"] == measured["bound_sharp"]
            lines.append(f"- SeqGR's measured rank equals the sharp bound at {int(hit.sum())} of {len(measured)} "
                         "(tree, H) points (numpy's rank tolerance, max(M, N) x machine epsilon).")
            for _, r in measured[~hit].iterrows():
                lines.append(f"  - {r['tree']} tree, H = {int(r['hidden'])}: measured {int(r['measured_rank'])} "
                             f"against the bound {int(r['bound_sharp'])} (singular value at the bound "
                             f"{_fmt(r['sigma_at_bound'], '.1e')} of the largest: float64 cannot resolve it).")
        lines.append("")
    lines += ["**LIMIT.** The published cubic n(d), grdr's measured critical n with every probe, and the sign-rank "
              "bounds share one axis in the critical_n section's figure (figures/critical_n.png); source: "
              + SOURCE["limit"] + "."]
    return "\n".join(lines)
