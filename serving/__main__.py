"""``python -m serving CONFIG.json``: serve with a whole config written as JSON, through the same
:func:`serving.server.serve` as ``stj serve``. The infra check (:mod:`serving.infra_check`) starts its
sandboxed server this way; it is not a user command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from configs.schema import Config
from serving.server import serve


def main(argv: list[str]) -> int:
    """Serve until stopped (SIGTERM or Ctrl-C); returns the exit code."""
    config = Config.model_validate_json(Path(argv[0]).read_text())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(config)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
