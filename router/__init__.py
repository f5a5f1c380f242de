"""The router core: pure logic, no sockets."""
