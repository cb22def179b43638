"""``python -m isac_market_env`` is the ``isac-market`` command."""

import sys

from isac_market_env.cli import main

sys.exit(main())
