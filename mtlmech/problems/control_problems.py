"""Problems for the controls / overfitting / transfer experiments (issue 6).

- ``noisy_copies``: statistical data amplification (C97 §3.2.1): every task is the same boolean
  feature F of a few bits, each with its own independent label noise; irrelevant bits pad the input.
- ``hint_pair``: eavesdropping with a catalytic hint (C97 §3.2.3): the main task uses F in a
  complex way (IF F THEN B ELSE C), the hint task is F itself.
- ``early_late``: a main task that keeps improving for a long time (B1 ∨ parity of three bits) and a
  related, easy but very noisy extra task (B1 ∨ B5) that reaches its best halt error early and
  then overtrains (C97 §7.1–7.2).
- ``noise_output``: any registered problem plus one output whose training labels are fair coin
  flips independent of the inputs (C97 §7.6's pure-noise output).
"""

from __future__ import annotations

from .features import constant, if_then_else, linear, or_, parity, threshold, var
from .inputs import InputSpace
from .tasks import Problem, Task, make_problem, register_problem


def majority(bits: tuple[int, ...]):
    """1 when more than half of the given bits are on."""
    f = threshold(linear({b: 1.0 for b in bits}), len(bits) / 2)
    return f.__class__(f"majority({','.join(f'x{b}' for b in bits)})", f.fn)


@register_problem("noisy_copies")
def noisy_copies(n_bits: int = 12, feature_bits: tuple[int, ...] = (0, 1, 2, 3, 4), n_copies: int = 2,
                 noise: float = 0.25) -> Problem:
    """Statistical amplification: tasks T1..Tk are F = majority(feature bits), each with independent label noise."""
    if n_copies < 1 or not feature_bits or max(feature_bits) >= n_bits or min(feature_bits) < 0:
        raise ValueError(f"noisy_copies needs ≥ 1 copy and feature bits within 0..{n_bits - 1}")
    f = majority(feature_bits)
    tasks = tuple(Task(f"T{i + 1}", f, noise=noise) for i in range(n_copies))
    return Problem(name="noisy_copies", inputs=InputSpace(n_vars=n_bits, kind="bits"), tasks=tasks,
                   features={"F": f}, description=noisy_copies.__doc__.splitlines()[0])


@register_problem("hint_pair")
def hint_pair(n_bits: int = 8, hint_bits: tuple[int, ...] = (0, 1, 2), then_bit: int = 3, else_bit: int = 4,
              noise: float = 0.0) -> Problem:
    """Eavesdropping: main = IF F THEN B ELSE C with F = parity(hint bits); hint = F itself."""
    used = {*hint_bits, then_bit, else_bit}
    if len(used) != len(hint_bits) + 2 or max(used) >= n_bits or min(used) < 0:
        raise ValueError("hint_pair needs distinct hint, then and else bits within the input")
    f = parity(hint_bits)
    main = if_then_else(f, var(then_bit), var(else_bit))
    tasks = (Task("main", main, noise=noise), Task("hint", f, noise=noise))
    return Problem(name="hint_pair", inputs=InputSpace(n_vars=n_bits, kind="bits"), tasks=tasks,
                   features={"F": f}, description=hint_pair.__doc__.splitlines()[0])


@register_problem("noise_output")
def noise_output(base: str = "noisy_copies", **params) -> Problem:
    """A registered problem plus output NOISE whose labels are fair coin flips (no relation to the inputs)."""
    problem = make_problem(base, **params)
    noise_task = Task("NOISE", constant(0.0), noise=0.5)
    return problem.replace(name=f"{problem.name}+noise_output", tasks=(*problem.tasks, noise_task),
                           description=f"{problem.description}; plus a pure-noise output")


@register_problem("early_late")
def early_late(n_bits: int = 10, parity_bits: tuple[int, ...] = (1, 2, 3), extra_bit: int = 4,
               main_noise: float = 0.05, extra_noise: float = 0.4) -> Problem:
    """Early-overtraining extra task: main = B1 ∨ parity(bits), extra = B1 ∨ B_extra with heavy label noise."""
    if 0 in parity_bits or extra_bit in (0, *parity_bits) or max(*parity_bits, extra_bit) >= n_bits:
        raise ValueError("early_late needs B1 = bit 0, and distinct parity and extra bits within the input")
    b1 = var(0, "B1")
    tasks = (Task("main", or_(b1, parity(parity_bits)), noise=main_noise),
             Task("extra", or_(b1, var(extra_bit)), noise=extra_noise))
    return Problem(name="early_late", inputs=InputSpace(n_vars=n_bits, kind="bits"), tasks=tasks,
                   features={"B1": b1, "P": parity(parity_bits)}, description=early_late.__doc__.splitlines()[0])
