"""ipywidgets editors, one per file; each keeps its state reachable from Python."""
from .browser import ModelBrowser
from .model_editor import AssetEditor, ModelEditor
from .progress import Progress
from .run_panel import RunPanel
from .signature_editor import SignatureEditor
from .tag_editor import TagSetEditor

__all__ = ["AssetEditor", "ModelBrowser", "ModelEditor", "Progress", "RunPanel", "SignatureEditor", "TagSetEditor"]
