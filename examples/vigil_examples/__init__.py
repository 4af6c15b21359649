"""Example workflow plugins for the Vigil workflow service."""
