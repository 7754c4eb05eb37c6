"""Kafka plumbing shared by every service.

Options, topic catalogue, producer, consumer and dead letters; see each module.
"""

from shared.kafka.consumer import BatchConsumer, CommitError, ConsumeError, Record, commit_offsets
from shared.kafka.deadletter import DeadLetter, DeadLetterProducer, decode_or_dead_letter
from shared.kafka.options import KafkaClientError, client_options, is_retriable
from shared.kafka.producer import EventProducer, OutgoingRecord, ProduceError
from shared.kafka.topics import Topic, TopicError, TopicSpec, ensure_topics, topic_name, topic_specs

__all__ = [
    "BatchConsumer",
    "CommitError",
    "ConsumeError",
    "DeadLetter",
    "DeadLetterProducer",
    "EventProducer",
    "KafkaClientError",
    "OutgoingRecord",
    "ProduceError",
    "Record",
    "Topic",
    "TopicError",
    "TopicSpec",
    "client_options",
    "commit_offsets",
    "decode_or_dead_letter",
    "ensure_topics",
    "is_retriable",
    "topic_name",
    "topic_specs",
]
