"""The restoration benchmark: models, the loss zoo, data, metrics and reports."""
