"""Storage backends: the operator's own store for recordings (a local directory or an S3 bucket)."""
