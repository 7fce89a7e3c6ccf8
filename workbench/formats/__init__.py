"""Format plugins: one module per format, each registering a ``workbench.core.registry.Format``.

A plugin declares how to recognise its files from their content (``sniff``), why a file that carries
its suffix is not valid (``explain``), how to load it, list its files, read its graph, describe it and
the compute precision it implies. The registry finds the plugins by listing this package's modules;
detection and loading by path are ``workbench.core.detect`` (``detect``, ``load_path``, ``model_files``).
"""
