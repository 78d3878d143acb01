"""Atomic structures: ingestion, symmetry-function descriptors, DV-LAE dataset
selection and Behler-Parrinello neural-network potentials."""
