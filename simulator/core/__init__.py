"""One run: its configuration and identity, the data split and sampling, the gradient engines,
the step, federated rounds, distributed execution and the run folder."""
