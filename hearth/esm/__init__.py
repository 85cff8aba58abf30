"""Event source mappings from Hearth's SQS queues to functions: the API and mappings
(``_api``, ``_model``) and the pollers (``_poller``). Imports point down: esm → invoke
(router) and esm → queues (engine)."""

from hearth.esm._api import EventSourceMappings
from hearth.esm._model import Mapping
from hearth.esm._poller import MappingPoller

__all__ = ["EventSourceMappings", "Mapping", "MappingPoller"]
