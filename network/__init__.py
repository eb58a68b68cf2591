"""FaceStation network package."""
