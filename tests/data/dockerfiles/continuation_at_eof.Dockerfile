FROM scratch
COPY a \
  /b \
