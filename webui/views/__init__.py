"""The web UI's tabs, one module each, over one :class:`webui.client.ApiClient`; ``common``
holds what they share."""
