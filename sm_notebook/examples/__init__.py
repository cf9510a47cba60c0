"""SavedModels bundled with sm_notebook for demos and documentation."""

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent


def available_examples():
    """Names of the bundled example SavedModel directories."""
    return sorted(p.name for p in EXAMPLES_DIR.iterdir()
                  if p.is_dir() and ((p / "saved_model.pb").exists()
                                     or (p / "saved_model.pbtxt").exists()))


def example_model_path(name="multi_tag_model"):
    """Path of a bundled example SavedModel directory.

    multi_tag_model is a TF1 export with tag-sets {serve}, {serve, gpu} and
    {train}, a softmax classifier and a vocabulary lookup table.
    """
    path = EXAMPLES_DIR / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"no bundled example model {name!r}; available: {available_examples()}")
    return path
