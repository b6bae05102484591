"""`python -m posecore` runs the command line."""

import sys

from posecore.cli import main

sys.exit(main())
