"""Lambda layers: the layer API, layer storage, and the merged ``/opt`` trees.

Imports: this package uses ``hearth.api`` wire helpers, ``hearth.code`` and the store;
the worker reaches it only through a callback (``opt_dir``) wired in ``server.py``.
"""

from hearth.layers._api import MAX_LAYERS, AccessDenied, LayerDownloads, LayersApi
from hearth.layers._functions import FunctionLayers
from hearth.layers._model import LayerVersion, parse_layer_arn
from hearth.layers._opt import OptTrees, tree_size
from hearth.layers._store import LayerStore
from hearth.layers._wiring import install

__all__ = [
    "MAX_LAYERS",
    "AccessDenied",
    "FunctionLayers",
    "LayerDownloads",
    "LayerStore",
    "LayerVersion",
    "LayersApi",
    "OptTrees",
    "install",
    "parse_layer_arn",
    "tree_size",
]
