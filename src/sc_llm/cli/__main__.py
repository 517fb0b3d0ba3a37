"""``python -m sc_llm.cli``: the same command line as ``sc-llm``."""

import sys

from . import main

sys.exit(main())
