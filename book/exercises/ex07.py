"""The self-checks of Exercise 7, the family of skip connections: what the notebook's check cells run, and the grader's probe and judge for each."""

from __future__ import annotations

__all__: list[str] = []


# The grader's probe (inside the learner's sandbox) and judge (in the grader) for each check.
JUDGED: dict = {}
