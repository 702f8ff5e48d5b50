FROM scratch
RUN echo \
# only a comment

