"""``python -m backprop``: the ``backprop`` command without the installed script."""

import sys

from backprop.cli import main

sys.exit(main())
