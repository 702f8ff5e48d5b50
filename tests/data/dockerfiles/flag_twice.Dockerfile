FROM scratch
COPY --from=a --from=b /a /b
