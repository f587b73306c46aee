"""plait: compile agent workflows to MLIR, place them at minimum TCO under an SLA, and run them.

`import plait` loads the SDK only; the compiler, planner and runtime load when used.
"""

from plait.sdk import *  # noqa: F403
from plait.sdk import __all__ as __all__  # noqa: PLE0604

__version__ = "0.1.0"
