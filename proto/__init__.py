"""The gRPC service definition, installed as ``rollmatch.proto``.

This file makes the folder a regular package, which a wheel and an editable install both find.
"""
