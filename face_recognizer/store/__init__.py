"""Where the gallery is stored."""
