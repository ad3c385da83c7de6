"""rollmatch's gRPC scoring service (installed as ``rollmatch.server``; see :mod:`rollmatch.server.app`)."""
