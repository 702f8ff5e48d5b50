# escape=`
# escape=\\
FROM scratch
