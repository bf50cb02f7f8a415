"""The FUSE layer: operations (thin translation), the errno table, the libfuse binding."""
