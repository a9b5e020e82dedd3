"""Data access: one module per stored concept, all over the one DynamoDB helper in `dynamo`."""
