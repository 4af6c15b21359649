"""healthd: periodic checks, auto-healing and aggregated health over grpc.health.v1."""
