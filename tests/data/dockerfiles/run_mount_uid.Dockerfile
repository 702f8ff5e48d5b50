FROM scratch
RUN --mount=type=cache,target=/c,uid=me true
