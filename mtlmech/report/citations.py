"""The sources claims cite, key → full reference (what each says that we test: docs/SOURCES.md).

A claim's ``source`` field (in ``summary.json``) names one or more of these keys, e.g.
``"C97 §3.2.1"`` or ``"seed; thesis taxonomy"``; :func:`cited` finds them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

CITATIONS: dict[str, str] = {
    "C93": "R. Caruana, \"Multitask Learning: A Knowledge-Based Source of Inductive Bias\", Proceedings of the "
           "Tenth International Conference on Machine Learning (ICML 1993), Amherst MA, Morgan Kaufmann, 1993, "
           "pp. 41–48",
    "C95": "R. Caruana, \"Learning Many Related Tasks at the Same Time with Backpropagation\", Advances in Neural "
           "Information Processing Systems 7 (NIPS 1994), MIT Press, 1995, pp. 657–664",
    "C97": "R. Caruana, \"Multitask Learning\", Machine Learning 28(1):41–75, 1997, doi:10.1023/A:1007379606734",
    "CS97": "R. Caruana and V. R. de Sa, \"Promoting Poor Features to Supervisors: Some Inputs Work Better as "
            "Outputs\", Advances in Neural Information Processing Systems 9 (NIPS 1996), MIT Press, 1997, "
            "pp. 389–395",
    "thesis": "R. Caruana, \"Multitask Learning\", PhD thesis, School of Computer Science, Carnegie Mellon "
              "University, technical report CMU-CS-97-203, 1997 (not consulted; known to us through "
              "secondary summaries of its taxonomy)",
    "seed": "the project's founding document: a Chinese-language wiki page on multitask learning "
            "(\"多任务学习\", from a machine-learning notes book), summarised in docs/SOURCES.md",
}

_KEY = re.compile(r"(?<![\w])(" + "|".join(sorted(map(re.escape, CITATIONS), key=len, reverse=True)) + r")(?![\w])")


def cited(source: str) -> list[str]:
    """The citation keys named in a claim's ``source`` text, in order of first mention."""
    return list(dict.fromkeys(_KEY.findall(source or "")))


def reference(key: str) -> str:
    """The full reference of ``key``; a KeyError names the known keys."""
    try:
        return CITATIONS[key]
    except KeyError:
        raise KeyError(f"unknown citation key {key!r}; known: {', '.join(CITATIONS)}") from None


def linked(source: str, link: Callable[[str], str]) -> str:
    """``source`` with each citation key in it replaced by ``link(key)`` (e.g. a markdown link)."""
    return _KEY.sub(lambda m: link(m.group(1)), source or "")
