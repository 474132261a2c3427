"""The composition root: the machine assembled from its parts.

Above every part it builds (``vm``, ``backend``, ``dirtylimit``, ``dirtyrate``,
``migration``) and below what serves it (``commands``, ``server``): no package below
imports this one.  :func:`build_machine` is the way in.
"""

from qmpdl.system.build import build_machine
from qmpdl.system.machine import Machine

__all__ = ["Machine", "build_machine"]
