"""The `scorecard` console script (also `python -m pipelines`).

Ctrl-C and SIGTERM are taken from the first instant, before the command's modules load (a second or two): a
signal then ends the command with one line and exit 130 / 143 instead of a traceback.
"""

import sys

from pipelines.interrupts import Interrupted, stop_on_signals


def main() -> None:
    with stop_on_signals():
        try:
            from pipelines.cli.app import app
        except Interrupted as interrupted:
            sys.stderr.write("interrupted while starting: nothing was written\n")
            sys.exit(interrupted.exit_code)
        app()


if __name__ == "__main__":
    main()
