FROM scratch
CMD ["a", "b",]
