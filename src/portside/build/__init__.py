"""Building images from Dockerfiles: parse, plan stages, apply steps, cache them, output."""
