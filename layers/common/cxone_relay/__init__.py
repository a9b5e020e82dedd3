"""cxone-relay shared layer: CXone client, token cache, domain logic, audit and observability."""
