"""Vigil security service."""
