"""``python -m wnsense_native``: the command line (see :mod:`wnsense_native.cli`)."""
from .cli import main

raise SystemExit(main())
