"""yikatong terminal."""
