"""``python -m phasectl``."""

from phasectl.app import main

raise SystemExit(main())
