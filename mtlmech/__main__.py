"""``python -m mtlmech``: the same as the ``mtlmech`` command."""

import sys

from .console import main

sys.exit(main())
