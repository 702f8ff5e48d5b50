"""The OCI data model: digests, references, media types, manifests, indexes, configs."""
