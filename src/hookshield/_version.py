"""The package's version, kept apart so that the command line can read it cheaply."""

__version__ = "0.1.0"
