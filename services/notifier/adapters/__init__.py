"""The notifier's adapters: PostgreSQL (channels, silences, the delivery log), the senders (HTTP and SMTP), the secret box."""
