import sys

from morphlib.cli import main

sys.exit(main())
