"""Seeing the throttle work: metrics (``--metrics``), the live view (``qmpdl-top``) and
plots of a run (``qmpdl-plot``).

Nothing here is imported by qmpdl's start-up unless ``--metrics`` is given: the
Prometheus client, textual and matplotlib load only in the tools that use them.
"""
