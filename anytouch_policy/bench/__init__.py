"""Benchmarks behind `anytouch bench <what>`: each module times one part and returns JSON-ready figures."""

__all__: list[str] = []
