"""Steps: plain functions ``(Model, options) -> Model`` that record lineage (export, convert, quantize)."""
