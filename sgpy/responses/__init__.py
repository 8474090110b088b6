"""Typed parsers for device answers."""
