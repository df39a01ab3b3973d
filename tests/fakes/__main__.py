"""`python -m tests.fakes --script FILE`: run the fake LLM server and print its URL."""

import sys

from tests.fakes.server import main

sys.exit(main())
