"""DTMF: validate digit sequences and send them to live CXone agent sessions."""
