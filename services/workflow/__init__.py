"""Vigil workflow service."""
