"""Stand-ins for the outside systems the gateway talks to, served over real sockets."""
