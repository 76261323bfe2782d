"""Declarative batch runner for image-to-video APIs."""

__version__ = "0.1.0"
