"""Datasets domain: plain Python, no frameworks."""
