"""``python -m hifigan`` = the ``hifigan`` command."""

from .cli import main

raise SystemExit(main())
