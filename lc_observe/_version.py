"""The package version, in a module of its own: sinks read it without importing the root."""

__version__ = "0.1.0"
