"""QAPI ``'if'`` conditions over qmpdl profile features.

A condition is a feature name (true when the profile has that feature), or
``{'all': [...]}``, ``{'any': [...]}`` or ``{'not': ...}`` combining others,
exactly the shapes QAPI accepts.  An absent condition is true.
"""

from __future__ import annotations

from collections.abc import Callable

from qmpdl.errors import QmpdlError
from qmpdl.qapi.parser import Value


class ConditionError(QmpdlError, ValueError):
    """A malformed ``'if'`` value."""


def check_condition(cond: Value | None, known: Callable[[str], bool]) -> None:
    """Raise ConditionError unless ``cond`` is well formed and names known features."""
    if cond is None:
        return
    if isinstance(cond, str):
        if not known(cond):
            raise ConditionError(f"unknown feature {cond!r} in 'if'")
        return
    if not isinstance(cond, dict) or len(cond) != 1:
        raise ConditionError(f"malformed 'if': {cond!r}")
    ((op, arg),) = cond.items()
    if op == "not":
        check_condition(arg, known)
    elif op in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise ConditionError(f"'{op}' needs a non-empty list: {cond!r}")
        for item in arg:
            check_condition(item, known)
    else:
        raise ConditionError(f"unknown operator {op!r} in 'if'")


def evaluate(cond: Value | None, has: Callable[[str], bool]) -> bool:
    """The truth of ``cond`` when feature ``f`` is on exactly if ``has(f)``."""
    if cond is None:
        return True
    if isinstance(cond, str):
        return has(cond)
    if not isinstance(cond, dict) or len(cond) != 1:
        raise ConditionError(f"malformed 'if': {cond!r}")
    ((op, arg),) = cond.items()
    if op == "not":
        return not evaluate(arg, has)
    if not isinstance(arg, list):
        raise ConditionError(f"'{op}' needs a list: {cond!r}")
    if op == "all":
        return all(evaluate(item, has) for item in arg)
    if op == "any":
        return any(evaluate(item, has) for item in arg)
    raise ConditionError(f"unknown operator {op!r} in 'if'")
