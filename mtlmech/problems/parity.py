"""C93's blocked parity tasks and the blocking pair of C95."""

from __future__ import annotations

from .features import and_, not_, or_, parity, var
from .inputs import InputSpace
from .tasks import Problem, Task, register_problem


@register_problem("c93_parity")
def c93_parity(n_bits: int = 8, parity_bits: tuple[int, ...] = (1, 2, 3, 4, 5), noise: float = 0.0) -> Problem:
    """C93 parity tasks: Task1 = B1∨P, Task2 = ¬B1∨P, Task3 = B1∧P, Task4 = ¬B1∧P, P = parity of a bit block.

    Bits are numbered from 0 in code (``x0`` is the sources' B1); bits outside ``parity_bits`` other
    than B1 are irrelevant inputs.
    """
    if n_bits < 2 or not parity_bits or max(parity_bits) >= n_bits or min(parity_bits) < 1 \
            or len(set(parity_bits)) != len(parity_bits):
        raise ValueError(f"c93_parity needs distinct parity bits within 1..{n_bits - 1} (B1 = bit 0 is the blocker), "
                         f"got {parity_bits} with {n_bits} bits")
    b1, p = var(0, "B1"), parity(parity_bits)
    p = p.__class__(f"P=parity({','.join(f'B{i + 1}' for i in parity_bits)})", p.fn)
    tasks = (Task("Task1", or_(b1, p), noise=noise), Task("Task2", or_(not_(b1), p), noise=noise),
             Task("Task3", and_(b1, p), noise=noise), Task("Task4", and_(not_(b1), p), noise=noise))
    return Problem(name="c93_parity", inputs=InputSpace(n_vars=n_bits, kind="bits"), tasks=tasks,
                   features={"B1": b1, "P": p}, description=c93_parity.__doc__.splitlines()[0])
