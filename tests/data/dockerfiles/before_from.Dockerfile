ENV A=1
FROM scratch
