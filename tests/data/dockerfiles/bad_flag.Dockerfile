FROM scratch
COPY --frm=build /a /b
