"""`python -m router` is the `smpp-router` command."""
import sys

from router.cli import main

sys.exit(main())
