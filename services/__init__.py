"""Vigil's gRPC services: `common` (shared server runtime), `workflow`, `security`."""
