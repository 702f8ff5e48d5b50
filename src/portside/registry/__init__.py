"""The OCI distribution server (`server`, `storage`) and the push/pull client (`client`)."""
