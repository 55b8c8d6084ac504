"""One error for every setting that cannot be used, and the validators that raise it.

A learner who types depth 9 into a widget, or a negative seed into a spec,
gets a :class:`ConfigError` whose message says what to change, never a
traceback from deep inside PyTorch. Every module of the course raises this
one class (a :class:`ValueError`), so ``except ConfigError`` catches them all.
"""

from __future__ import annotations

__all__ = ["ConfigError", "validate_whole_number", "validate_choice", "is_whole_number"]


class ConfigError(ValueError):
    """A setting that cannot be built or run; the message says what to change."""


def is_whole_number(value) -> bool:
    """``True`` for an ``int`` that is not a ``bool`` (``True`` is an int in Python, but never a depth)."""
    return isinstance(value, int) and not isinstance(value, bool)


def validate_whole_number(name: str, value, minimum: int | None = None, maximum: int | None = None,
                       hint: str = "") -> int:
    """Return ``value`` if it is a whole number in ``[minimum, maximum]``; else raise :class:`ConfigError`.

    Args:
        name: what the value is, as the learner knows it (``"depth"``, ``"seed"``).
        minimum, maximum: inclusive bounds; ``None`` for none.
        hint: a sentence appended to the message (for example the chapter's setting).
    """
    if is_whole_number(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return value
    if minimum is not None and maximum is not None:
        wanted = f"a whole number from {minimum} to {maximum}"
    elif minimum is not None:
        wanted = f"a whole number ≥ {minimum}"
    elif maximum is not None:
        wanted = f"a whole number ≤ {maximum}"
    else:
        wanted = "a whole number"
    raise ConfigError(f"{name} must be {wanted}, got {value!r}.{(' ' + hint) if hint else ''}")


def validate_choice(name: str, value, choices) -> object:
    """Return ``value`` if it is one of ``choices``; else raise :class:`ConfigError` listing them."""
    if value in tuple(choices):
        return value
    raise ConfigError(f"{name} {value!r} is not one of {list(choices)}.")
