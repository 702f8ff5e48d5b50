"""Secrets kept out of images: the store (AES-GCM at rest, metadata in the state backend),
the Vault driver, the Docker API's `/secrets` and `/configs`, and the daemon extension that
gives the engine its `SecretSource`."""
