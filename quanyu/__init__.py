"""Quanyu: an API-first omnichannel customer data platform."""

__version__ = "0.1.0"
