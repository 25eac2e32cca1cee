"""spark-submit entry point of the Hourglass metric jobs; see hourglass_jobs/cli.py."""

import sys

from hourglass_jobs.cli import main

if __name__ == "__main__":
    sys.exit(main())
