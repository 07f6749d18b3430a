"""Statistics: the tests (:mod:`.tests`), claims and their judgement (:mod:`.claims`), paired
comparisons of runs (:mod:`.paired`) and trends over a sweep (:mod:`.trend`).

``mtlmech.stats`` re-exports the tests and the claim vocabulary, so experiments write
``from mtlmech.stats import ClaimResult, paired_tost``.
"""

from .claims import MAX_CAP_FRACTION, MIN_RUNS, RULES, ClaimResult, judge
from .tests import (
                    ALPHA,
                    CI_LEVEL,
                    VERDICTS,
                    combine_verdicts,
                    fisher_exact,
                    holm,
                    mcnemar_exact,
                    mean_ci,
                    newcombe_diff_ci,
                    paired_bootstrap_ci,
                    paired_tost,
                    paired_wilcoxon,
                    verdict_band,
                    verdict_directional,
                    verdict_equivalence,
                    verdict_threshold,
                    wilson_ci,
)

__all__ = ["ALPHA", "CI_LEVEL", "MAX_CAP_FRACTION", "MIN_RUNS", "RULES", "VERDICTS", "ClaimResult", "combine_verdicts",
           "fisher_exact", "holm", "judge", "mcnemar_exact", "mean_ci", "newcombe_diff_ci", "paired_bootstrap_ci",
           "paired_tost", "paired_wilcoxon", "verdict_band", "verdict_directional", "verdict_equivalence",
           "verdict_threshold", "wilson_ci"]
