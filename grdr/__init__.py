"""grdr: generative versus dense retrieval, in theory and in simulation (docs/design.md).

The subpackages import as grdr.theory, grdr.sim, grdr.realdata, grdr.experiments, grdr.figures and
grdr.benchmarks; this module imports nothing, so that `grdr --help` stays light.
"""
