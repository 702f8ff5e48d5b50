# escape=x
FROM scratch
