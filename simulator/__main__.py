"""`python -m simulator` is the `byzsim` command."""
import sys

from simulator.cli import main

sys.exit(main())
