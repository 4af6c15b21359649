"""The workflow service's command line: an alias of ``vigil runs`` (see `services.cli`).

    python -m services.workflow.cli start echo --params '{"a": 1}' --wait
    python -m services.workflow.cli list --workflow echo --state FAILED

is ``vigil runs --json start ...`` / ``vigil runs --json list ...``: same flags and exit codes;
the result is JSON on stdout (as this command always printed it), progress on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from services.cli import main as vigil


def main(argv: Sequence[str] | None = None) -> int:
    return vigil(["runs", "--json", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
