FROM scratch
RUN --mount=type=secret,id=s,mode=rw true
