FROM scratch
COPY --chmod=rwx a /b
