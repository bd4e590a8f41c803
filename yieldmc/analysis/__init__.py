"""Gradients, sensitivities and optimisation on top of the engine."""
