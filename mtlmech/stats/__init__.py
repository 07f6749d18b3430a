"""Statistics: the tests (:mod:`.tests`), claims, their judgement and the tally (:mod:`.claims`),
the claim constructors (:mod:`.declare`), predicted replication (:mod:`.power`), paired
comparisons of runs (:mod:`.paired`) and trends over a sweep (:mod:`.trend`).

``mtlmech.stats`` re-exports the tests and the claim vocabulary, so experiments write
``from mtlmech.stats import ClaimResult, paired_tost`` or ``from mtlmech.stats import declare``.
"""

from . import declare
from .claims import MAX_CAP_FRACTION, MAX_FIT_FRACTION, MIN_RUNS, RULES, ClaimResult, judge, tally
from .power import n_for_same_verdict, p_same_verdict
from .tests import (
                    ALPHA,
                    CI_LEVEL,
                    VERDICTS,
                    combine_verdicts,
                    describes,
                    fisher_exact,
                    holm,
                    interval_p,
                    mcnemar_exact,
                    mean_ci,
                    newcombe_diff_ci,
                    paired_bootstrap_ci,
                    paired_tost,
                    paired_wilcoxon,
                    verdict_band,
                    verdict_directional,
                    verdict_directional_sesoi,
                    verdict_equivalence,
                    verdict_threshold,
                    wilson_ci,
)

__all__ = ["ALPHA", "CI_LEVEL", "MAX_CAP_FRACTION", "MAX_FIT_FRACTION", "MIN_RUNS", "RULES", "VERDICTS", "ClaimResult",
           "combine_verdicts", "declare", "describes", "fisher_exact", "holm", "interval_p", "judge", "mcnemar_exact",
           "mean_ci", "n_for_same_verdict", "newcombe_diff_ci", "p_same_verdict", "paired_bootstrap_ci", "paired_tost",
           "paired_wilcoxon", "tally", "verdict_band", "verdict_directional", "verdict_directional_sesoi",
           "verdict_equivalence", "verdict_threshold", "wilson_ci"]
