"""`python -m tlgen` runs the command line."""

import sys

from tlgen.cli.main import main

sys.exit(main())
