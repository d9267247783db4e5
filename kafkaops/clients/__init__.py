"""Typed producer and consumer on confluent-kafka, and the partitioners they apply."""
