"""`python -m tests.hostile`: every hostile case, run as a user would, printed as a table of case → outcome."""

import importlib
import pkgutil
import sys
from pathlib import Path

from tests.hostile import harness

sys.path.insert(0, str(harness.ROOT / "src"))
for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
    if module.name.startswith("test_"):
        importlib.import_module(f"tests.hostile.{module.name}")
sys.exit(harness.main())
