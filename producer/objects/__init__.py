"""A job's stored objects seen from the producer: links, fetching them out, safe file
names, S3 addressing, the manifest of an expired job."""
