"""Write the numbered tutorial notebooks from the cell lists below and execute them.

    python notebooks/build_notebooks.py            # all notebooks
    python notebooks/build_notebooks.py 03         # only those whose name starts with 03

The notebooks are committed with their outputs and validated by nbval in CI
(`pytest --nbval notebooks/ --nbval-sanitize-with notebooks/sanitize.cfg`).
Cells whose output is legitimately variable (timings, widget views) carry the
`nbval-ignore-output` tag: mark such a cell by starting it with "# ignore-output".
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

SETUP = '''\
import warnings
from pathlib import Path

import numpy as np
import sm_notebook

MODELS = Path("../tests/fixtures/models")  # small models made by tests/fixtures/make_fixtures.py
'''

NOTEBOOKS: dict[str, list[str]] = {}

NOTEBOOKS["01_inspecting_a_savedmodel.ipynb"] = [
    "md:# 1. Inspecting a SavedModel without TensorFlow\n\n"
    "A SavedModel is a **directory**, not a file. `sm_notebook` reads every part of it with "
    "its own protobuf schemas and its own reader for the variables bundle, so nothing here "
    "imports TensorFlow (hundreds of MB, seconds of start-up).",
    SETUP,
    "md:## The directory layout\n\n"
    "* `saved_model.pb`: a `SavedModel` protobuf holding one or more **MetaGraphs**. Each "
    "MetaGraph is a graph plus its **tag-set** and its **SignatureDefs**.\n"
    "* `variables/`: the trained values, as a TensorBundle: `variables.index` (a sorted table "
    "of names, dtypes, shapes and offsets) and `variables.data-00000-of-00001` (the bytes).\n"
    "* `assets/`: files the graph reads at load time (vocabularies).\n"
    "* `fingerprint.pb` (TF 2.x): hashes identifying the model.",
    "model = MODELS / 'tf1_multi_tags'\n"
    "for path in sorted(model.rglob('*')):\n"
    "    if path.is_file():\n"
    "        print(f\"{str(path.relative_to(model)):45} {path.stat().st_size:>8} bytes\")",
    "md:## MetaGraphs, tag-sets and signatures\n\n`sm_notebook.inspect` describes the whole model.",
    "info = sm_notebook.inspect(model)\n[sorted(tags) for tags in info.tag_sets]  # tag-sets are frozensets; sorted for display",
    "for mg in info.meta_graphs:\n"
    "    print(sorted(mg.tags), '->', list(mg.signatures))",
    "md:A signature names the tensors a caller feeds and fetches, with their dtype and shape "
    "(`None` is a dimension of any size, usually the batch).",
    "sig = info.signature('serving_default', tags='serve')\n"
    "for spec in list(sig.inputs.values()) + list(sig.outputs.values()):\n"
    "    print(spec)",
    "md:## Ops census\n\nWhich ops the graph uses (and how often) tells you what a runtime must support.",
    "serve = info.meta_graph('serve')\n"
    "sorted(serve.op_counts.items(), key=lambda kv: -kv[1])[:8]",
    "md:## Variables, straight from the bundle\n\nOpening the bundle reads only `variables.index`; "
    "a value is read (and CRC-checked) when asked for.",
    "for var in serve.variables:\n"
    "    print(var.name, var.dtype, var.shape, '-> checkpoint key', repr(var.checkpoint_key))\n"
    "info.bundle.read('weights').round(3)",
    "md:## Assets",
    "[(a.filename, a.tensor_name, a.exists) for a in serve.assets]",
    "md:## `sm-notebook show` prints what `saved_model_cli show` prints\n\n"
    "The fixture script captured `saved_model_cli show --all` from TensorFlow when it made the "
    "model; our command line gives the same text (the ops line is a Python set, whose order "
    "varies from run to run, so it is compared as a set).",
    "import subprocess\n"
    "ours = subprocess.run(['sm-notebook', 'show', '--dir', str(model), '--all'],\n"
    "                      capture_output=True, text=True, check=True).stdout\n"
    "theirs = (Path('../tests/fixtures/cli/tf1_multi_tags/show_all.txt')).read_text()\n"
    "def normalise(text):\n"
    "    return [line if 'contains the following ops' not in line else\n"
    "            sorted(line.split(': ', 1)[1].strip('{}').split(', ')) for line in text.splitlines()]\n"
    "for line in normalise(ours):  # the ops sets printed sorted\n"
    "    print(line if isinstance(line, str) else '    ops: ' + ', '.join(line))\n"
    "print('identical to saved_model_cli:', normalise(ours) == normalise(theirs))",
    "md:## In a notebook: `%load_ext sm_notebook` and `%savedmodel`\n\n"
    "The magics give the same answers as rich displays (tables that read in light and dark "
    "themes; problems first). `%savedmodel?` lists every sub-command.",
    "%load_ext sm_notebook",
    "%savedmodel show ../tests/fixtures/models/tf1_multi_tags --tags serve",
    "md:`summary` is the parameter table Keras users expect, read from the variables index "
    "(no values loaded):",
    "%savedmodel summary ../tests/fixtures/models/keras3_cnn",
    "md:## What changed between two exports? `diff`\n\n"
    "Tag-sets, signatures (keys, tensors, dtypes, shapes, method names), variables (added, "
    "removed, reshaped, and changed values with the largest difference), assets and op counts. "
    "Here an edited copy of the model with one signature renamed:",
    "import tempfile\n"
    "edited = Path(tempfile.mkdtemp()) / 'edited'\n"
    "b = sm_notebook.Builder.from_saved_model(model)\n"
    "b.rename_signature('lookup', 'tokens_to_ids', tags='serve')\n"
    "b.save(edited)\n"
    "sm_notebook.diff(model, edited)",
    "md:The same from the command line: `sm-notebook diff --dir OLD --dir NEW` (exit status 1 "
    "when something differs), or `%savedmodel diff OLD NEW` for two paths:",
    "%savedmodel diff ../tests/fixtures/models/keras3_mlp ../tests/fixtures/models/tfkeras_mlp",
    "md:## A health check\n\n`diagnose()` looks for everything that makes a model fail to load or "
    "behave unexpectedly: colliding tag-sets, dangling signature tensors, missing variables or "
    "assets, a stale fingerprint.",
    "print(info.diagnose())",
    "md:or, as a table with each fix: `%savedmodel diagnose PATH`.",
    "%savedmodel diagnose ../tests/fixtures/models/tf1_multi_tags",
]

NOTEBOOKS["02_signatures.ipynb"] = [
    "md:# 2. Signatures\n\n"
    "A graph has thousands of tensors; a **SignatureDef** says which ones form the model's "
    "interface, like a function prototype: named inputs, named outputs, and a method name "
    "(`tensorflow/serving/predict`, `classify` or `regress`). TF Serving and every loader look "
    "signatures up by key; `serving_default` is the one used when no key is given.",
    SETUP,
    "info = sm_notebook.inspect(MODELS / 'keras3_mlp')\n"
    "mg = info.meta_graph('serve')\n"
    "for key, sig in mg.signatures.items():\n"
    "    print(key, sig.method_name)\n"
    "    for spec in list(sig.inputs.values()) + list(sig.outputs.values()):\n"
    "        print('   ', spec)",
    "md:Keras named the output `output_0`: a caller has to know that. `__saved_model_init_op` is "
    "not a user signature: it is what TF2 runs once at load (here, nothing).",
    "md:## Running a signature with the engine\n\n`sm_notebook.load` picks the metagraph exactly as "
    "TensorFlow does and compiles each signature into a plan of numpy operations.",
    "model = sm_notebook.load(MODELS / 'keras3_mlp', tags='serve')\n"
    "x = np.random.default_rng(0).normal(size=(3, 8)).astype('float32')\n"
    "out = model.signatures['serving_default'](features=x)\n"
    "out['output_0'].round(4)",
    "md:The fixture script recorded what TensorFlow computed for the same input:",
    "expected = np.load('../tests/fixtures/expected/keras3_mlp.npz', allow_pickle=True)\n"
    "key = 'serve|serving_default'\n"
    "feed = expected[key + '|inputs|features']\n"
    "ours = model.signatures['serving_default'](features=feed)['output_0']\n"
    "print('max abs difference from TensorFlow:', float(np.abs(ours - expected[key + '|outputs|output_0']).max()))",
    "md:## Renaming `output_0` and adding `serving_default`, with the Builder\n\n"
    "No re-export: the Builder edits the SignatureDefs (and, for TF2 models, the object graph's "
    "signature map that `tf.saved_model.load(...).signatures` reads) and writes a new directory "
    "atomically.",
    "import tempfile\n"
    "out_dir = Path(tempfile.mkdtemp()) / 'mlp_edited'\n"
    "builder = sm_notebook.Builder.from_saved_model(MODELS / 'keras3_mlp')\n"
    "builder.rename_output('serving_default', 'output_0', 'probabilities')\n"
    "builder.rename_signature('serve', 'predict')\n"
    "builder.save(out_dir)\n"
    "edited = sm_notebook.inspect(out_dir).meta_graph('serve')\n"
    "{k: list(s.outputs) for k, s in edited.signatures.items()}",
    "reloaded = sm_notebook.load(out_dir, tags='serve')\n"
    "np.allclose(reloaded.signatures['serving_default'](features=feed)['probabilities'],\n"
    "            expected[key + '|outputs|output_0'], rtol=1e-5, atol=1e-6)",
    "md:## Running from the notebook: `%savedmodel run`\n\n"
    "Inputs are notebook variables, Python literals or numpy constructors (parsed, never "
    "evaluated). The result shows each output's shape, dtype, min/max/mean, NaN/Inf counts, the "
    "top classes of score-like outputs (named from a vocabulary asset when the model has one) and a "
    "histogram; a bar follows the ops of long runs and Ctrl-C stops at the next op.",
    "%load_ext sm_notebook",
    "# ignore-output\n"
    "%savedmodel run ../tests/fixtures/models/keras3_mlp features=feed -o outputs",
    "outputs['output_0'].shape",
    "md:## The same edit with the editor widget\n\n`%savedmodel edit PATH` opens the model "
    "editor: signatures, tag-sets and assets as tabs, one Save (disabled while an edit is "
    "invalid; by default to a new `<name>_edited` directory, never over the model) and a full "
    "diff preview. Everything it does is also reachable from Python (`editor.builder`, "
    "`editor.save()`).",
    "# ignore-output\n"
    "%savedmodel edit ../tests/fixtures/models/keras3_mlp --tags serve -o model_editor",
    "md:What the mouse does, code can do: rename the output, check the Builder's rules, preview "
    "the edit as `%%savedmodel` cell text, and save.",
    "editor = model_editor.signatures  # the Signatures tab\n"
    "editor.select('serving_default')\n"
    "editor.rename_output('output_0', 'probabilities')\n"
    "print(editor.cell_text)\n"
    "print('problems:', editor.problems())\n"
    "widget_out = Path(tempfile.mkdtemp()) / 'mlp_widget_edit'\n"
    "editor.save(widget_out)\n"
    "print(list(sm_notebook.inspect(widget_out).signature('serving_default', tags='serve').outputs))",
]

NOTEBOOKS["03_tags_and_collisions.ipynb"] = [
    "md:# 3. Tags and collisions\n\n"
    "A SavedModel can hold several MetaGraphs, one per (device x purpose): `{serve}` for CPU "
    "serving, `{serve, gpu}` for GPU serving, `{train}` for training. Each is labelled by a "
    "**set** of tags, and a loader asks for a set. TensorFlow picks the MetaGraph whose tag-set "
    "**equals** the request: not one that contains it.",
    SETUP,
    "md:## Story 1: asking `serve` when the file has `{serve, gpu}` and `{serve}`\n\nYou get the "
    "plain `{serve}` metagraph, never the GPU one, because matching is exact.",
    "info = sm_notebook.inspect(MODELS / 'tf1_multi_tags')\n"
    "print([sorted(t) for t in info.tag_sets])\n"
    "print('tags=\"serve\" ->', sorted(info.meta_graph('serve').tags))\n"
    "print('tags=[\"serve\", \"gpu\"] ->', sorted(info.meta_graph(['serve', 'gpu']).tags))",
    "md:Tags are a list, and a bare string means **one** tag. (TensorFlow's own builder iterates "
    "a string, turning `'serve'` into the tags `s, e, r, v`.)",
    "from sm_notebook.tags import normalize_tags\n"
    "sorted(normalize_tags('serve')), sorted(normalize_tags(['serve', 'gpu']))",
    "md:## Story 2: asking `serve` when the file has `{serve, gpu}` and `{serve, cpu}`\n\n"
    "Both contain `serve`, neither equals it: TensorFlow fails with one terse line. We fail too "
    "(guessing would hide a real ambiguity), but say why and what to ask for instead.",
    "info = sm_notebook.inspect(MODELS / 'tf1_ambiguous_serve')\n"
    "try:\n"
    "    info.meta_graph('serve')\n"
    "except sm_notebook.TagSetNotFoundError as err:\n"
    "    print(err)\n"
    "    print('\\nsuggestions:', [sorted(s) for s in err.suggestions])",
    "md:## Story 3: two metagraphs saved with the same tags\n\nTensorFlow's builder accepts it "
    "silently and every loader takes the first; the second one's signatures become unreachable. "
    "We take the first too (compatibility) but warn.",
    "info = sm_notebook.inspect(MODELS / 'tf1_duplicate_tags')\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    warnings.simplefilter('always')\n"
    "    chosen = info.meta_graph('serve')\n"
    "print('loaded metagraph #', chosen.index, 'with', list(chosen.signatures))\n"
    "print(caught[0].message)",
    "md:`%savedmodel show` marks the shadowed metagraph in its heading, and `diagnose` explains "
    "the collision with its fix:",
    "%load_ext sm_notebook",
    "%savedmodel diagnose ../tests/fixtures/models/tf1_duplicate_tags",
    "md:## Fixing each story with the Builder\n\n"
    "* Story 2: add a plain `{serve}` metagraph sharing the CPU graph.\n"
    "* Story 3: give the duplicate its own tag-set.",
    "import tempfile\n"
    "tmp = Path(tempfile.mkdtemp())\n"
    "b = sm_notebook.Builder.from_saved_model(MODELS / 'tf1_ambiguous_serve')\n"
    "b.add_meta_graph(['serve'], copy_from=['serve', 'cpu'])\n"
    "b.save(tmp / 'fixed_ambiguous')\n"
    "print([sorted(t) for t in sm_notebook.inspect(tmp / 'fixed_ambiguous').tag_sets])",
    "b = sm_notebook.Builder.from_saved_model(MODELS / 'tf1_duplicate_tags')\n"
    "try:\n"
    "    b.save(tmp / 'still_duplicated')\n"
    "except sm_notebook.SavedModelError as err:\n"
    "    print('refused:', str(err).splitlines()[0])",
    "md:The Builder refuses to write duplicates. Both metagraphs match `serve`, so we name the "
    "shadowed one by its index (`#1`) and give it a tag-set of its own; its signature becomes "
    "reachable again:",
    "b.set_tags('serve', ['serve', 'canary'], index=1)\n"
    "b.save(tmp / 'fixed_duplicates')\n"
    "fixed = sm_notebook.inspect(tmp / 'fixed_duplicates')\n"
    "print([sorted(t) for t in fixed.tag_sets])\n"
    "print(list(fixed.meta_graph('serve').signatures), list(fixed.meta_graph(['serve', 'canary']).signatures))\n"
    "print('diagnose ok:', fixed.diagnose().ok)",
]

NOTEBOOKS["04_assets.ipynb"] = [
    "md:# 4. Assets\n\n"
    "Some graphs need files at load time, typically a vocabulary that initialises a lookup "
    "table. The SavedModel keeps them in `assets/` and records each one with an "
    "**AssetFileDef**: the file name plus the graph tensor (a string placeholder or constant) "
    "that will hold the file's path. At load time the loader feeds that tensor with the path "
    "inside the *current* export directory, so the model can be moved anywhere.",
    SETUP,
    "info = sm_notebook.inspect(MODELS / 'tf1_multi_tags')\n"
    "serve = info.meta_graph('serve')\n"
    "for asset in serve.assets:\n"
    "    print(asset.filename, '<- fed into tensor', asset.tensor_name)\n"
    "print((MODELS / 'tf1_multi_tags' / 'assets' / 'vocab.txt').read_text())",
    "md:The table is built by `HashTableV2` and filled by `InitializeTableFromTextFileV2` in the "
    "model's init op, which runs once at load:",
    "[(op, n) for op, n in serve.op_counts.items() if 'Table' in op]",
    "model = sm_notebook.load(MODELS / 'tf1_multi_tags', tags='serve')\n"
    "model.signatures['lookup'](tokens=np.array([b'cat', b'mat', b'unknown-word'], dtype=object))",
    "md:## Adding an asset with the Builder\n\n`add_asset` copies the file into `assets/` and "
    "records it (AssetFileDef, the asset collection, and the TF2 object graph when there is one).",
    "import tempfile\n"
    "tmp = Path(tempfile.mkdtemp())\n"
    "labels = tmp / 'labels.txt'\n"
    "labels.write_text('negative\\npositive\\n')\n"
    "b = sm_notebook.Builder.from_saved_model(MODELS / 'tf1_multi_tags')\n"
    "b.add_asset(labels, tags='serve')\n"
    "b.save(tmp / 'with_labels')\n"
    "[(a.filename, a.exists) for a in sm_notebook.inspect(tmp / 'with_labels').meta_graph('serve').assets]",
    "md:Paths in a model are untrusted: an asset that points outside the export directory is "
    "refused rather than read.",
]

NOTEBOOKS["05_savedmodel_or_checkpoint.ipynb"] = [
    "md:# 5. SavedModel or checkpoint?\n\n"
    "A **checkpoint** (a TensorBundle: `.index` + `.data-*`) holds variable values only: no "
    "graph, no signatures, no tags. You need the Python code that built the model to use it. "
    "A **SavedModel** adds the graph, the signatures, the tags and the assets: it is hermetic "
    "and language-neutral (C++, Java, TF Serving and sm_notebook load it without your code). "
    "Inside every SavedModel, `variables/` *is* a checkpoint.",
    SETUP,
    "from sm_notebook.format.bundle import BundleReader\n"
    "bundle = BundleReader(MODELS / 'keras3_mlp' / 'variables' / 'variables')\n"
    "for key in bundle.keys():\n"
    "    print(f'{key:60} {str(bundle.dtype(key)):8} {bundle.shape(key)}')",
    "md:TF2 checkpoints key values by **object path** (`layer_with_weights-0/kernel/...`), recorded "
    "in the `_CHECKPOINTABLE_OBJECT_GRAPH` entry; a SavedModel's variables are the same bytes, "
    "reached through its object graph:",
    "for path, key in sorted(bundle.object_paths().items()):\n"
    "    print(f'{path:40} -> {key}')",
    "info = sm_notebook.inspect(MODELS / 'keras3_mlp')\n"
    "for var in info.meta_graph('serve').variables:\n"
    "    same = np.array_equal(info.bundle.read(var.checkpoint_key), bundle.read(var.checkpoint_key))\n"
    "    print(f'{var.name:30} {var.shape}  read both ways, equal: {same}')",
    "md:A histogram says more about trained weights than a table of numbers:",
    "# ignore-output\n"
    "import matplotlib.pyplot as plt\n"
    "fig, axes = plt.subplots(1, 2, figsize=(8, 2.5))\n"
    "for ax, var in zip(axes, [v for v in info.meta_graph('serve').variables if v.name.endswith('kernel')][:2]):\n"
    "    ax.hist(info.bundle.read(var.checkpoint_key).ravel(), bins=30)\n"
    "    ax.set_title(f'{var.name} {var.shape}')\n"
    "plt.tight_layout(); plt.show()",
    "md:## A checkpoint on its own\n\nWrite a bundle of two variables. It loads as values and "
    "nothing more: there is nothing to call.",
    "import tempfile\n"
    "from sm_notebook.format.bundle import BundleWriter\n"
    "prefix = Path(tempfile.mkdtemp()) / 'ckpt'\n"
    "writer = BundleWriter(prefix)\n"
    "writer.add('w', np.arange(6, dtype='float32').reshape(2, 3))\n"
    "writer.add('step', np.array(42, dtype='int64'))\n"
    "writer.finish()\n"
    "print(sorted(p.name for p in prefix.parent.iterdir()))\n"
    "with BundleReader(prefix) as r:\n"
    "    print({k: r.read(k).tolist() for k in r.keys()})",
    "md:To serve it you would still need the graph and a signature: that is what "
    "`sm_notebook.Graph` and `Builder` add (notebook 7).",
]

NOTEBOOKS["06_backends.ipynb"] = [
    "md:# 6. Backends: numpy and cupy\n\n"
    "The engine's kernels are written once against the array API, so the same plan runs on "
    "numpy (CPU) or cupy (GPU). Strings never go to the GPU: those ops stay on the host, as "
    "TensorFlow keeps string ops on the CPU.",
    SETUP,
    "import time\n"
    "def has_gpu():\n"
    "    try:\n"
    "        import cupy\n"
    "        return cupy.cuda.runtime.getDeviceCount() > 0\n"
    "    except Exception:\n"
    "        return False\n"
    "GPU = has_gpu()\n"
    "print('GPU available:', GPU)",
    "path = MODELS / 'keras3_cnn'\n"
    "cpu_model = sm_notebook.load(path, tags='serve', backend='numpy')\n"
    "key = 'serving_default'\n"
    "sig = sm_notebook.inspect(path).signature(key, tags='serve')\n"
    "name, spec = next(iter(sig.inputs.items()))\n"
    "print(name, spec.shape)",
    "def timed(model, batch, repeat=5):\n"
    "    x = np.random.default_rng(0).normal(size=(batch,) + spec.shape[1:]).astype('float32')\n"
    "    model.signatures[key](**{name: x})  # warm-up\n"
    "    start = time.perf_counter()\n"
    "    for _ in range(repeat):\n"
    "        out = model.signatures[key](**{name: x})\n"
    "    return (time.perf_counter() - start) / repeat, out",
    "# ignore-output\n"
    "batches = [1, 8, 32, 64]\n"
    "cpu_times = [timed(cpu_model, b)[0] * 1e3 for b in batches]\n"
    "gpu_times = None\n"
    "if GPU:\n"
    "    gpu_model = cpu_model.to('cupy')\n"
    "    gpu_times = [timed(gpu_model, b)[0] * 1e3 for b in batches]\n"
    "    _, a = timed(cpu_model, 8); _, b = timed(gpu_model, 8)\n"
    "    print('numpy vs cupy max difference:', float(np.abs(next(iter(a.values())) - b[next(iter(b))].get()).max()))\n"
    "else:\n"
    "    print('No GPU here: the cupy comparison is skipped; numpy timings only.')\n"
    "for b, t in zip(batches, cpu_times):\n"
    "    print(f'batch {b:3}: numpy {t:7.2f} ms')",
    "# ignore-output\n"
    "import matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots(figsize=(5, 3))\n"
    "ax.plot(batches, cpu_times, 'o-', label='numpy (CPU)')\n"
    "if gpu_times:\n"
    "    ax.plot(batches, gpu_times, 's-', label='cupy (GPU)')\n"
    "ax.set_xlabel('batch size'); ax.set_ylabel('ms per call'); ax.set_xscale('log', base=2)\n"
    "ax.legend(); ax.set_title('keras3_cnn, per-call latency')\n"
    "plt.show()",
    "md:On a GPU the fixed cost of launching kernels dominates at small batches, so the GPU pays "
    "from the batch size where its line crosses below numpy's. Without a GPU only the numpy "
    "line is drawn.",
]

NOTEBOOKS["07_composing_a_model.ipynb"] = [
    "md:# 7. Composing a model from scratch\n\n"
    "`sm_notebook.Graph` builds a TensorFlow graph node by node (dtypes and shapes are inferred), "
    "`sm_notebook.signature` declares its interface, and the `Builder` writes a SavedModel "
    "that TensorFlow loads, all without TensorFlow.",
    SETUP,
    "rng = np.random.default_rng(0)\n"
    "g = sm_notebook.Graph()\n"
    "x = g.placeholder('x', 'float32', (None, 4))\n"
    "w = g.variable('w', rng.normal(size=(4, 3)).astype('float32'))\n"
    "b = g.variable('b', np.zeros(3, 'float32'))\n"
    "logits = g.op('BiasAdd', g.op('MatMul', x, w), b)\n"
    "probs = g.op('Softmax', logits, name='probabilities')\n"
    "probs",
    "import tempfile\n"
    "export = Path(tempfile.mkdtemp()) / 'composed'\n"
    "builder = sm_notebook.Builder(graph=g)\n"
    "builder.add_signature('serving_default', inputs={'x': x}, outputs={'probabilities': probs})\n"
    "builder.save(export)\n"
    "print(sm_notebook.inspect(export).diagnose())",
    "model = sm_notebook.load(export, tags='serve')\n"
    "batch = rng.normal(size=(2, 4)).astype('float32')\n"
    "ours = model.signatures['serving_default'](x=batch)['probabilities']\n"
    "ours.round(4)",
    "md:Check it by hand with numpy, and (only where TensorFlow happens to be installed) with "
    "TensorFlow's own loader:",
    "info = sm_notebook.inspect(export)\n"
    "W, B = info.bundle.read('w'), info.bundle.read('b')\n"
    "z = batch @ W + B\n"
    "manual = np.exp(z - z.max(1, keepdims=True)); manual /= manual.sum(1, keepdims=True)\n"
    "print('matches numpy:', np.allclose(ours, manual, rtol=1e-5, atol=1e-6))",
    "# ignore-output\n"
    "# TensorFlow runs in a child process, so its start-up log lines stay out of this notebook.\n"
    "import importlib.util, json, subprocess, sys\n"
    "np.save(export.parent / 'batch.npy', batch)\n"
    "check = ('import json, sys, numpy as np, tensorflow as tf; '\n"
    "         'f = tf.saved_model.load(sys.argv[1]).signatures[\"serving_default\"]; '\n"
    "         'x = tf.constant(np.load(sys.argv[2])); '\n"
    "         'print(json.dumps(f(x=x)[\"probabilities\"].numpy().tolist()))')\n"
    "if importlib.util.find_spec('tensorflow'):\n"
    "    child = subprocess.run([sys.executable, '-c', check, str(export), str(export.parent / 'batch.npy')],\n"
    "                           capture_output=True, text=True, check=True)\n"
    "    tf_out = np.array(json.loads(child.stdout.strip().splitlines()[-1]), np.float32)\n"
    "    print('matches TensorFlow:', np.allclose(ours, tf_out, rtol=1e-5, atol=1e-6))\n"
    "else:\n"
    "    print('TensorFlow is not installed; skipped.')",
]


NOTEBOOKS["08_scoring_at_scale.ipynb"] = [
    "md:# 8. Scoring at scale with Dask\n\n"
    "A dataset too big for one process is scored chunk by chunk on a cluster. "
    "`sm_notebook.dask.predict` builds a **lazy** Dask collection from a signature: its dtype "
    "and shape come from the SignatureDef, so nothing runs until you ask. Every worker process "
    "loads the model once (cached by path and fingerprint) and reuses it for each chunk. The "
    "workers run sm_notebook's engine, not TensorFlow: it imports in milliseconds and needs a "
    "fraction of the memory.\n\n"
    "Needs the extra: `pip install -e \".[dask]\"`.",
    SETUP,
    "md:## A local cluster\n\n"
    "Two worker processes with one thread each. The same code runs on any `distributed.Client` "
    "(Kubernetes, YARN, SLURM through Dask's deployment projects) when every worker can read "
    "the model's path. The dashboard link opens Dask's live view of tasks and memory.",
    "# ignore-output\n"
    "import dask.array as da\n"
    "import dask.dataframe as dd\n"
    "import pandas as pd\n"
    "from dask.distributed import Client, LocalCluster, progress\n"
    "import sm_notebook.dask\n\n"
    "cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,\n"
    "                       dashboard_address=':0', silence_logs=50)\n"
    "client = Client(cluster)\n"
    "print('dashboard:', client.dashboard_link)",
    "md:## A lazy prediction\n\n"
    "200 chunks would work the same way; here 20,000 rows of 8 features in chunks of 5,000, "
    "made on the workers. `batch_size` splits each chunk into calls of at most 2,000 rows.",
    "path = MODELS / 'keras3_mlp'\n"
    "rows = da.random.default_rng(0).random((20_000, 8), chunks=(5_000, 8), dtype='float32')\n"
    "scores = sm_notebook.dask.predict(path, rows, batch_size=2_000)\n"
    "scores",
    "md:Nothing has run yet: `scores` knows its shape, dtype and chunks from the signature. "
    "`client.compute` starts the job and Dask's `progress` shows it.",
    "# ignore-output\n"
    "future = client.compute(scores)\n"
    "progress(future)",
    "result = future.result()\n"
    "result.shape, result.dtype, result[:2].round(4)",
    "md:The same numbers, bit for bit, as one process calling the signature on the same "
    "batches (each chunk of 5,000 rows in calls of 2,000). A call on all 20,000 rows at once "
    "may differ in the last bit: BLAS sums in another order for another number of rows.",
    "model = sm_notebook.load(path)\n"
    "features = rows.compute()\n"
    "batches = [features[start:start + 5_000][i:i + 2_000]\n"
    "           for start in range(0, 20_000, 5_000) for i in range(0, 5_000, 2_000)]\n"
    "single = np.concatenate([model.signatures['serving_default'](features=batch)['output_0']\n"
    "                         for batch in batches])\n"
    "np.array_equal(result, single)",
    "md:## One model load per worker process\n\n"
    "`sm_notebook.dask.model_loads()` counts the loads of the process it runs in; "
    "`client.run` asks every worker.",
    "scores.compute()  # a second job: the workers reuse their cached model\n"
    "loads = client.run(sm_notebook.dask.model_loads)\n"
    "counts = [count for per_worker in loads.values() for count in per_worker.values()]\n"
    "print('loads per worker process:', set(counts))",
    "md:## DataFrames in, DataFrames out\n\n"
    "Columns map to inputs by name; `columns=` maps the others (a list is stacked into one "
    "input). An output of shape `(None, k)` becomes `k` columns.",
    "table = pd.DataFrame(np.random.default_rng(1).random((9, 8), dtype='float32'),\n"
    "                     columns=[f'f{i}' for i in range(8)])\n"
    "frame = dd.from_pandas(table, npartitions=3)\n"
    "scored = sm_notebook.dask.predict(path, frame, columns={'features': list(table.columns)})\n"
    "scored.compute().round(4).head(3)",
    "md:Strings work too: the vocabulary lookup of notebook 4, through its asset file.",
    "tokens = dd.from_pandas(pd.DataFrame({'tokens': ['the', 'cat', 'sat', 'on', 'the', 'dog']}),\n"
    "                        npartitions=2)\n"
    "sm_notebook.dask.predict(MODELS / 'tf1_multi_tags', tokens, signature='lookup',\n"
    "                         tags='serve').compute()['ids'].tolist()",
    "md:## Bad data is reported by partition\n\n"
    "A partition that does not fit the signature fails with a `SavedModelError` raised here, "
    "naming the partition and the problem. Dtypes and shapes Dask already knows are checked "
    "before anything is scheduled:",
    "try:\n"
    "    sm_notebook.dask.predict(path, da.zeros((10, 7), dtype='float32'))\n"
    "except sm_notebook.SavedModelError as exc:\n"
    "    print(exc)",
    "md:## Memory per worker\n\n"
    "The peak resident memory of each worker process after the jobs above (VmHWM, read on the "
    "workers). `benchmarks/bench_dask.py` scores MobileNetV2 and the MLP with sm_notebook and with "
    "TensorFlow inside `map_blocks` on a second cluster of the same size; the README records its figures "
    "(a TensorFlow worker holds the whole TensorFlow runtime, several hundred MiB, before it "
    "scores a row).",
    "# ignore-output\n"
    "def peak_rss_mib():\n"
    "    with open('/proc/self/status') as status:\n"
    "        return next(int(line.split()[1]) for line in status if line.startswith('VmHWM:')) / 1024\n\n"
    "{worker: f'{mib:.0f} MiB' for worker, mib in client.run(peak_rss_mib).items()}",
    "client.close()\n"
    "cluster.close()",
]

NOTEBOOKS["09_graph_view.ipynb"] = [
    "md:# 9. The graph view\n\n"
    "`sm_notebook.inspect(path).graph(signature, tags)` draws what **one signature** runs: "
    "the nodes its outputs depend on, traced back to its inputs, and nothing else (no saver, "
    "restore or init nodes). Calls (`StatefulPartitionedCall`, `If`/`While`/`Case` bodies) are "
    "single boxes that open in place into their function bodies; name scopes (Keras layers) fold "
    "into one box each; edges carry dtype and shape; ops the engine cannot run are outlined red.\n\n"
    "In JupyterLab the view is an interactive widget: its front end (laid out by dagre) is "
    "bundled into the package by `tools/build_frontend.sh` when it is installed, and nothing is "
    "fetched when it is shown. Everywhere else (nbconvert, GitHub, the outputs saved in this "
    "notebook) it is a static SVG of the collapsed top level, drawn in Python without a "
    "browser: `view.to_svg()`, also in the view's rich display. (The cells showing views are "
    "not compared by nbval: without the built front end they add a line saying how to build "
    "it. The SVG itself is compared, in the cell after the first view.)",
    SETUP,
    "md:## A TF1 export: the bundled example\n\n"
    "The example model bundled with sm_notebook has three metagraphs sharing one graph. Its "
    "`serving_default` signature is a softmax classifier:",
    "# ignore-output\n"
    "from sm_notebook.examples import example_model_path\n\n"
    "example = example_model_path()\n"
    "info = sm_notebook.inspect(example)\n"
    "view = info.graph('serving_default', tags='serve')\n"
    "view",
    "from IPython.display import SVG\n\n"
    "SVG(view.to_svg())  # the same picture every time: nbval compares it",
    "md:Each box is an op (its type over its name) or a name scope folded into one box: `weights` "
    "holds the variable and the `Identity` that reads it. The widget opens a scope with its "
    "\u2295; here it stays folded.\n\n"
    "## What Netron shows for the same model\n\n"
    "Netron draws a metagraph's whole `GraphDef`: every node stored in `saved_model.pb`, whether "
    "a signature reaches it or not. For the `{serve}` metagraph of this file that is:",
    "from collections import Counter\n\n"
    "graph_def = info.meta_graph('serve').proto.graph_def\n"
    "shown = set(view.model.main.nodes)\n"
    "left_out = [node for node in graph_def.node if node.name not in shown]\n"
    "print(f'{len(graph_def.node)} nodes in the GraphDef; the view of serving_default draws '\n"
    "      f'{len(shown & {n.name for n in graph_def.node})} of them (and one box per output)')\n"
    "Counter(node.name.split('/')[0] for node in left_out).most_common()",
    "md:So Netron's picture of this file also holds the saver (`save/...`: `SaveV2`, "
    "`RestoreV2`, `MergeV2Checkpoints`), the initialisers (`init`, `init_tables`, the "
    "`Assign` of each variable), the vocabulary table of the other signature (`lookup`) and, "
    "since TF1 builders store one graph for every metagraph, the training step of `{train}` "
    "(`gradients/...`, `GradientDescent`). None of that runs when `serving_default` is "
    "called, and none of it is in the view.\n\n"
    "## A TF2 export: calls that open in place\n\n"
    "A TF2 (Keras) export keeps almost nothing in its main graph: the signature is one "
    "`StatefulPartitionedCall` of a wrapper function, which calls the model's function, where "
    "the layers are. The variables the call captures are folded into one `(captured)` box.",
    "# ignore-output\n"
    "cnn = sm_notebook.inspect(MODELS / 'keras3_cnn').graph()\n"
    "cnn",
    "for body_id, body in cnn.model.bodies.items():\n"
    "    print(f\"{body_id or '(the signature in the main graph)':45} {len(body.nodes):4} nodes\")",
    "md:Netron shows this file's main `GraphDef`: the signature's call box next to the saver's "
    "own calls and every variable handle, and it cannot open the function bodies in place, "
    "where the layers are. The file holds:",
    "mg = cnn.info.meta_graphs[0].proto\n"
    "print(len(mg.graph_def.node), 'nodes in the main graph:', dict(Counter(n.op for n in mg.graph_def.node).most_common(6)))\n"
    "print(len(mg.graph_def.library.function), 'library functions:', sorted(f.signature.name for f in mg.graph_def.library.function))",
    "md:In the widget, \u2295 on the call opens the wrapper in place, \u2295 on its call opens the "
    "model's body, where each Keras layer is one box (its weights inside it); \u2296 on a frame "
    "closes it again. Clicking a box shows its op type, attributes (defaults marked), device, "
    "inputs and outputs, and for variables their dtype, shape and value statistics; the search "
    "field finds nodes by name or op type in every body and opens what hides them. The same facts "
    "from Python:",
    "cnn.find('Conv2D')",
    "kernel = next(n.name for n in cnn.model.main.nodes.values() if n.kind == 'variable')\n"
    "cnn.details(kernel)['variable']",
    "md:## Ops the engine cannot run\n\n"
    "The engine's scan marks every op it lacks (or refuses, for IO): the op is outlined red, and "
    "a scope or call holding one is dashed red. The fixtures use none, so here the example's "
    "`MatMul` is renamed in memory to `SparseMatMul`, a TensorFlow op the engine does not "
    "implement (the file is not touched):",
    "demo = sm_notebook.inspect(example)\n"
    "for node in demo.meta_graph('serve').proto.graph_def.node:\n"
    "    if node.op == 'MatMul':\n"
    "        node.op = 'SparseMatMul'\n"
    "marked = demo.graph('serving_default', tags='serve')\n"
    "marked.model.unsupported()  # (function body, node, op, why)",
    "# ignore-output\n"
    "marked",
    "md:## `%savedmodel graph` and the model browser\n\n"
    "`%savedmodel graph PATH [--signature KEY] [--tags T]` shows the same view "
    "(`serving_default` when there is one), and the model browser "
    "(`%savedmodel edit PATH --widget browser`) has a graph tab for the selected signature.",
    "%load_ext sm_notebook",
    "# ignore-output\n"
    "%savedmodel graph ../sm_notebook/examples/multi_tag_model --tags serve --signature lookup",
    "md:## A picture to keep\n\n`to_svg()` is a complete SVG document: write it next to a report.",
    "import tempfile\n\n"
    "svg_file = Path(tempfile.mkdtemp()) / 'serving_default.svg'\n"
    "svg_file.write_text(view.to_svg())\n"
    "print(svg_file.name, svg_file.stat().st_size > 0)",
]

def make_notebook(cells: list[str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for text in cells:
        if text.startswith("md:"):
            nb.cells.append(nbformat.v4.new_markdown_cell(text[3:]))
            continue
        cell = nbformat.v4.new_code_cell(text)
        if text.startswith("# ignore-output"):
            cell.metadata["tags"] = ["nbval-ignore-output"]
        nb.cells.append(cell)
    return nb


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def drop_bundled_widgets(nb: nbformat.NotebookNode) -> None:
    """Leave out the saved state of anywidget views (the graph view): it holds their front-end
    bundle, third-party code included, which is never committed. Their outputs keep the
    static SVG the view also displays."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    dropped = {key for key, model in state.items() if model.get("model_module") == "anywidget"}
    for key in list(dropped):
        layout = state[key].get("state", {}).get("layout", "")
        if isinstance(layout, str) and layout.startswith("IPY_MODEL_"):
            dropped.add(layout[len("IPY_MODEL_"):])
    for key in dropped:
        state.pop(key, None)
    if not state:
        nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") in dropped:
                del output["data"][WIDGET_VIEW]


def build(name: str) -> Path:
    path = HERE / name
    nb = make_notebook(NOTEBOOKS[name])
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    drop_bundled_widgets(nb)
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    wanted = sys.argv[1:]
    for notebook in sorted(NOTEBOOKS):
        if not wanted or any(notebook.startswith(w) for w in wanted):
            print("built", build(notebook))
