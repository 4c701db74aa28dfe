"""``python -m actorhw.cli``: the actorhw command."""

from actorhw.cli.main import main

raise SystemExit(main())
