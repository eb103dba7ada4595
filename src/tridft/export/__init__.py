"""Exporting a trained model as a TorchScript program that runs without tridft.

``torchscript`` builds and checks the program; ``neighbors`` is the neighbour list
written in TorchScript that travels inside it.
"""
