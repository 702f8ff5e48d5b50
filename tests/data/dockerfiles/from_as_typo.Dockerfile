FROM scratch ASS build
