"""How smsq reaches Redis and runs on Celery: connections (URL, password, TLS), the broker
transport, beat's scheduler."""
