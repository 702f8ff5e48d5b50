FROM scratch
ARG 1x=2
