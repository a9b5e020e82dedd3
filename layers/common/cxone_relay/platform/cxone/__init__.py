"""Everything that speaks to CXone: endpoint paths, tokens, and the client."""
