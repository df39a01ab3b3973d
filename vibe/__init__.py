"""vibe: a coding agent for the terminal, built for Mistral models."""

__version__ = "0.1.0"
