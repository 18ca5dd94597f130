"""followme: follow-me for a quadcopter."""

__version__ = "0.1.0"
