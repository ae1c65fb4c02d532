"""Outgoing webhooks: endpoints per account, an outbox written beside each state change, and a
delivery job that signs (Standard Webhooks) and retries each event until it is answered or the
retry schedule runs out."""
