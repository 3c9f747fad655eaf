"""The convnet claim: the MNIST tutorial convnet and its overparameterized twin (spec.py, runs.py,
kind.py, report.py)."""
