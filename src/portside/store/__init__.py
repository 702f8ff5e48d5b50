"""The image store: blobs by digest, tags and image records, layer snapshots, GC."""
