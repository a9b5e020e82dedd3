"""Social inbox: scheduled pulls of CXone digital conversations from a checkpoint, urgency and
sentiment classification, and chunked ticket upserts."""
