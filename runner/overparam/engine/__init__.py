"""The numerics: batched deep-linear models, their initialisation, and the step loop.

The engine knows no claim: it trains groups of runs that share a pass over the data and reports
their loss curves. Specs, checks and reports are layers above it.
"""

from overparam.engine.end_to_end import rule10_direction, rule12_direction
from overparam.engine.loop import Trace, run_loop
from overparam.engine.models import DeepLinear, EndToEnd, Stacked, WarmupForm

__all__ = ["DeepLinear", "EndToEnd", "Stacked", "WarmupForm", "Trace", "rule10_direction", "rule12_direction", "run_loop"]
