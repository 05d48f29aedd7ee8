"""aipc: build, package and verify Phi-3-class models on AI PCs."""

__version__ = "0.1.0"
