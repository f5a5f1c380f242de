"""The edges: sockets, files, brokers, clocks."""
