"""cxone-relay's shared layer.

`platform` holds what every workflow shares (settings, observability, transport, the CXone and
ticketing clients, idempotency, the SQS consumer, the API resolver, data access); each folder
under `workflows` is one workflow, depending on the platform and never on another workflow.
"""
