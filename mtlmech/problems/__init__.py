"""Synthetic problems: the task and problem types and the registry (:mod:`.tasks`), input spaces
(:mod:`.inputs`), boolean and real features (:mod:`.features`), and the built-in problem families
(every other module here, imported when the registry is first used)."""
