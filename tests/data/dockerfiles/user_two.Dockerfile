FROM scratch
USER a b
