"""Software bills of materials: what is really in an image's layers (`inventory`), written
as SPDX 2.3 or CycloneDX JSON through their own libraries (`formats`)."""
