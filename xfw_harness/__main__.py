import sys

from xfw_harness.cli import main

sys.exit(main())
