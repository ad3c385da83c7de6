"""The service wing: rollmatch's gRPC scoring server, installed as ``rollmatch.server`` (see :mod:`.app`).

It lives in the top-level ``server/`` folder, as the design lays out the repository, and pyproject.toml maps it
into the package. Its neighbours are the generated message code, ``rollmatch/_pb`` (regenerated from
``proto/`` and checked by a test), and the Python client, ``rollmatch/client.py``. These three are the only
places that import grpc, so ``import rollmatch`` stays light; the servicer converts messages and makes one
library call, and the library below it knows nothing of gRPC.
"""
