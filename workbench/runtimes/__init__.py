"""Runtime plugins: one module per runtime, each a ``Runner`` subclass that registers itself."""
