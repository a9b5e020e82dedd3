"""One package per workflow. Workflows import the platform, never each other."""
