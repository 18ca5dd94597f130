import sys

from followme.cli import main

sys.exit(main())
