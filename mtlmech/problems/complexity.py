"""Problems for the complexity experiment (C97 §7.8, "MTL thrives on complexity"; issue 13).

- ``blocked_family``: C93's blocked parity tasks generalised to several blocker bits. For each
  blocker bit A (in order) four tasks share the parity sub-feature P: A ∨ P, ¬A ∨ P, A ∧ P, ¬A ∧ P.
  With one blocker this is ``c93_parity``'s Task1..Task4; a second blocker adds four more tasks
  that use P through a different gate, so the number of related extra tasks can grow from 1 to 7
  while the main task (T1 = B1 ∨ P) stays the same. The parity order (how many bits P reads) sets
  the complexity of the shared feature.
"""

from __future__ import annotations

from .features import and_, not_, or_, parity, var
from .inputs import InputSpace
from .tasks import Problem, Task, register_problem


@register_problem("blocked_family")
def blocked_family(n_bits: int = 8, blockers: tuple[int, ...] = (0, 1), parity_bits: tuple[int, ...] = (2, 3, 4),
                   noise: float = 0.0) -> Problem:
    """Blocked tasks sharing P = parity(bits): per blocker A, tasks A∨P, ¬A∨P, A∧P, ¬A∧P (T1 = B1 ∨ P)."""
    used = (*blockers, *parity_bits)
    if not blockers or not parity_bits or len(set(used)) != len(used) or min(used) < 0 or max(used) >= n_bits:
        raise ValueError(f"blocked_family needs distinct blocker and parity bits within 0..{n_bits - 1}, "
                         f"got blockers {blockers}, parity bits {parity_bits}")
    p = parity(parity_bits)
    p = p.__class__(f"P=parity({','.join(f'B{i + 1}' for i in parity_bits)})", p.fn)
    tasks = []
    for a in blockers:
        b = var(a, f"B{a + 1}")
        tasks += [or_(b, p), or_(not_(b), p), and_(b, p), and_(not_(b), p)]
    return Problem(name="blocked_family", inputs=InputSpace(n_vars=n_bits, kind="bits"),
                   tasks=tuple(Task(f"T{i + 1}", f, noise=noise) for i, f in enumerate(tasks)),
                   features={"P": p, **{f"B{a + 1}": var(a) for a in blockers}},
                   description=blocked_family.__doc__.splitlines()[0])
