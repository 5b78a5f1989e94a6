"""``python -m xentbench.report``: the same as ``xentbench report``."""

import argparse
import sys

import xentbench.report
from xentbench.report.command import add_arguments, run

parser = argparse.ArgumentParser(prog="python -m xentbench.report", description=xentbench.report.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
add_arguments(parser)
sys.exit(run(parser.parse_args()))
