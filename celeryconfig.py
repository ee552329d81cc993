"""Celery settings live in the next commit."""
