"""FaceStation gui package."""
