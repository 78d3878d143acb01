"""Implicit (deep-equilibrium) networks on image data and their Gaussian-process limit."""
