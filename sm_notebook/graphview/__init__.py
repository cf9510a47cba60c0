"""A signature\x27s graph as data, its layered layout and its static SVG (no browser needed)."""
