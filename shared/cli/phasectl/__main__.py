"""``python -m shared.cli.phasectl``."""

from shared.cli.phasectl.app import main

raise SystemExit(main())
