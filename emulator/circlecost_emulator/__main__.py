"""`python -m circlecost_emulator --port P [--seed S] [--replay DIR] ...`"""

import sys

from circlecost_emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
