"""Request and response schemas of the HTTP API, one module per router.

``common``: the one error body (:class:`~server.api.schemas.common.ErrorBody`), the error
answers routes declare, bounded ids and ISO times; ``datasets``, ``splits``, ``jobs`` (typed
job bodies per kind), ``models``, ``predict`` (prediction and labelling help), ``health``,
``options``.
"""
