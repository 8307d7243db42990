"""Entry point: `python -m benchmarks [--quick] [--out DIR]`."""

import sys

from benchmarks.suite import main

sys.exit(main())
