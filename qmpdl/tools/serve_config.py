"""Run qmpdl with MachineConfig fields set directly:
``python -m qmpdl.tools.serve_config FIELDS_JSON [QMPDL OPTIONS...]``.

The options are parsed as ``qmpdl`` parses them; ``FIELDS_JSON`` (an object) then
sets fields of the resulting :class:`qmpdl.config.MachineConfig` (``machine_type``,
``uuid``, ``cpu_model``, ``objects``, ``devices``, ``blockdevs``...).  Tests and tools
use it to present machines whose QEMU options qmpdl's command line does not parse.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence

from qmpdl.cli import PROG, UsageError, parse_args


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    fields = json.loads(args[0])
    try:
        config = parse_args(args[1:])
    except UsageError as e:
        print(e, file=sys.stderr)
        return 1
    config = config.model_validate(config.model_dump() | fields)
    from qmpdl.errors import ConfigError
    from qmpdl.server.app import serve

    try:
        return asyncio.run(serve(config))
    except ConfigError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
