FROM scratch
HEALTHCHECK --retries=many CMD true
