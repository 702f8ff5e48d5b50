FROM scratch
ENTRYPOINT ["a", 1]
