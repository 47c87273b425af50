"""End-to-end steps that tie the store, the models and the metrics together (used by jobs and the CLI)."""
