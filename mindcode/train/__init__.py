"""Training: the shared driver loop, sampler and metrics; the backends provide the step."""
