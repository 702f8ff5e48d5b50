FROM scratch
RUNN echo hi
