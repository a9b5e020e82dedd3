"""What every workflow shares. Nothing here imports a workflow (import-linter checks it)."""
