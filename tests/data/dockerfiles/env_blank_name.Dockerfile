FROM scratch
ENV =x
