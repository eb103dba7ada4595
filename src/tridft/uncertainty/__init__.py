"""Uncertainties of a trained model's predictions: last-layer prediction rigidity (LLPR).

``llpr`` computes them, ``calibrate`` fits them on a run's training and validation data.
"""
