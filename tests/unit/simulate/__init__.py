"""The simulated pool (chimera/simulate/): its model judged statistically, its sinks with fakes."""
