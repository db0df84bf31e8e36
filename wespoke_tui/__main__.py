import sys

from wespoke_tui.cli import main

sys.exit(main())
