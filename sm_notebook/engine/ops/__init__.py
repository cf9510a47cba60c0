"""Op kernels, one module per op family; importing this package registers them all."""
import importlib
import pkgutil

from . import registry  # noqa: F401

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "registry" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
