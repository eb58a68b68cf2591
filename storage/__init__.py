"""FaceStation storage package."""
