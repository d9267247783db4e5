"""Applications built on the library: the benchmarks, the end-to-end demo and the aggregate job.

They call the library and return values; they never import the CLI and never print for
humans (``kafkaops.cli`` renders what they return).
"""
