"""Serialization: Avro (Confluent wire format), JSON and bytes codecs; a schema registry in ZooKeeper."""
