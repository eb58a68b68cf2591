"""FaceStation vision package."""
