"""FaceStation gui widgets package."""
