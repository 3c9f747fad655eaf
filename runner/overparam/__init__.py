"""overparam: executable YAML specs for the claims of Arora, Cohen & Hazan (ICML 2018)."""

__version__ = "0.1.0"
