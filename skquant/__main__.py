"""``python -m skquant``: the command line, as the ``skquant`` script runs it."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
