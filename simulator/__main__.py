"""`python -m simulator` is the `byzsim` command."""
import sys

from simulator.cli.main import main

sys.exit(main())
