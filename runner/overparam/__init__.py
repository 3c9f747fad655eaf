"""overparam: executable YAML specs for the claims of Arora, Cohen & Hazan (ICML 2018)."""

import os

# MKL's strict reproducible mode makes matrix products independent of the thread count, so a
# run's numbers are the same in this process, in a worker process and on a Ray worker. It must
# be set before torch loads MKL, which is why it lives here, before any module imports torch.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
