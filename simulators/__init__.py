"""yikatong simulators."""
