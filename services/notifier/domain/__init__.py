"""Pure domain of the notifier: no Kafka, no PostgreSQL, no HTTP, no I/O.

Which channels an alert goes to and how alerts are grouped and timed per
channel (matchers, routing, grouping, as Alertmanager's routes and
aggregation groups), and what each notification says in each service's
format (messages, which gathers the message_* modules: the group message and
its webhook, Slack, Discord, Telegram, PagerDuty and email bodies). Import
from the modules themselves; this package exports nothing.
"""
