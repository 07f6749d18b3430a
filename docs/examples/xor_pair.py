"""An example user problem: two tasks that share an XOR feature, each with an irrelevant-input mix.

Register it by importing this file: ``python experiments/compare.py --plugin docs/examples/xor_pair.py
--problem xor_pair``. Nothing in the library needs editing.
"""

from mtlmech.problems.features import and_, or_, var, xor
from mtlmech.problems.inputs import InputSpace
from mtlmech.problems.tasks import Problem, Task, register_problem


@register_problem("xor_pair")
def xor_pair(n_irrelevant: int = 4, noise: float = 0.1) -> Problem:
    """Example: T = (x0 ⊕ x1) ∧ x2 and T' = (x0 ⊕ x1) ∨ x3, label noise on both, some irrelevant bits."""
    f = xor(var(0), var(1))
    return Problem(
        name="xor_pair",
        inputs=InputSpace(n_vars=4, kind="bits", n_irrelevant=n_irrelevant),
        tasks=(Task("T", and_(f, var(2)), noise=noise), Task("T_prime", or_(f, var(3)), noise=noise)),
        features={"F": f},
    )
