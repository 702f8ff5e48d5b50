FROM scratch
HEALTHCHECK --interval=soon CMD true
