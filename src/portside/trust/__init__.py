"""What makes what runs trustworthy (DESIGN.md): signatures and the one policy, provenance
and trace, secrets, SBOMs, vulnerability matching, image lint and structure tests.

This layer sits above the engine: the engine and the builder never import it; they receive
small Protocols (verify an image against the policy, read a secret) that the daemon's
assembly fills with this package's implementations.
"""
