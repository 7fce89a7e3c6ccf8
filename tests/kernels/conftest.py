import pytest

from workbench.kernels.modes import setup


@pytest.fixture(scope="session", autouse=True)
def kernel_mode():
    """Every test here runs in the mode this machine gets (the interpreter on CI)."""
    return setup()
