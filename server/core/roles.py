"""The roles an API token may have (the one list; it imports nothing, so ``kmine token --help``
can offer it without loading the database's libraries). Which routes each role may call is
decided in ``server.api.permissions``:

* ``admin``: everything, managing tokens and deleting datasets included;
* ``user``: all but those admin routes;
* ``worker``: only what a job worker needs.
"""

TOKEN_ROLES = ("admin", "user", "worker")
