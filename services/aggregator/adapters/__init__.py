"""I/O of the aggregator: PostgreSQL, Kafka and the outputs."""
