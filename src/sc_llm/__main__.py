"""``python -m sc_llm``: the same command line as ``sc-llm``."""

import sys

from .cli import main

sys.exit(main())
