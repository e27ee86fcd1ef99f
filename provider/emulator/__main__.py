"""`python -m provider.emulator --port P [--seed S] [--replay DIR] ...`"""

import sys

from provider.emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
