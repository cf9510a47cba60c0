"""The notebook layer: %savedmodel magics, rich displays and ipywidgets editors.

Nothing here is imported by ``import sm_notebook``; ``%load_ext sm_notebook``
loads the magics, and the widgets load when first used.
"""
