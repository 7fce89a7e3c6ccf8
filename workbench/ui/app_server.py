"""The published app's server side: the kernel launcher and kernel manager its Voilà configuration
names (``binder/app/``, used by ``scripts/start --app`` and the Binder start script).

Every visitor of a Voilà page gets a kernel of their own (~400 MB for the app). The configuration
bounds what visitors can take:

- **culling**: a kernel idle for ``cull_idle_timeout`` seconds is shut down (checked every
  ``cull_interval``), connected or not (``cull_connected``): a closed tab, a killed browser or a
  script that opened the page and left no longer leaves a kernel forever;
- **a memory cap per visitor**: :class:`VisitorKernelManager` starts a visitor's kernel through
  ``python -m workbench.ui.app_kernel --memory BYTES -- <the kernelspec's command>``, which caps the kernel's address space (``RLIMIT_AS``,
  inherited by its worker process) before ipykernel starts, so one visitor cannot take the machine;
  it also sets ``WORKBENCH_PUBLISHED=1``, which the views read to lock themselves (``KernelLab``);
  Only visitors' kernels (those Voilà starts: their environment holds Voilà's ``VOILA_*``
  variables) are capped and culled; a JupyterLab kernel on the same server (Binder) is left alone.
- **preheated kernels**: standalone Voilà keeps a pool of kernels that have already run the
  notebook, so a visitor's page is served at once. Voilà keeps the pool's kernels out of culling
  (they wait for a visitor, they are not abandoned); a kernel handed to a visitor is culled like any
  other.
- **no tracebacks** are sent to visitors (``show_tracebacks: false``).
- **the browsers' websocket protocol only** (:class:`V1KernelConnection`): a client that connects to a
  kernel without the ``v1.kernel.websocket.jupyter.org`` subprotocol (the legacy JSON protocol, which
  no current front end uses) is closed at its first message. Measured here (jupyter_server 2.21):
  one widget message of 1 MiB sent over the legacy protocol makes the server grow ~20 MB/s without
  end; over v1 it does not.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager, ServerKernelManager
from traitlets import Bool, Int, default

from workbench.ui.app_kernel import DEFAULT_MEMORY


def is_visitor_env(env: dict[str, str]) -> bool:
    """True for the environment Voilà gives a kernel it starts for a page (preheated or not)."""
    return any(key in env for key in ("VOILA_PREHEAT", "VOILA_BASE_URL", "VOILA_REQUEST_URL"))


class VisitorKernelManager(ServerKernelManager):
    """One kernel; a visitor's (started by Voilà) runs under ``workbench.ui.app_kernel``'s cap."""

    visitor = Bool(False, help="started for a visitor of a Voilà page: capped, published, culled")

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        env = dict(kw.get("env") or {})
        if is_visitor_env(env):
            self.visitor = True
            limit = getattr(self.parent, "visitor_memory", DEFAULT_MEMORY)
            cmd = [sys.executable, "-m", "workbench.ui.app_kernel", "--memory", str(limit), "--", *cmd]
            env["WORKBENCH_PUBLISHED"] = "1"
            kw["env"] = env
        return cmd, kw


class AppKernelManager(AsyncMappingKernelManager):
    """Voilà's kernel manager for the app: starts visitors' kernels capped, culls only theirs.

    Voilà's preheat pool (``VoilaConfiguration.preheat_kernel``) wraps this class and keeps its
    waiting kernels out of culling itself. Kernels that are not visitors' (a JupyterLab notebook's,
    on Binder) are never culled here.
    """

    visitor_memory = Int(DEFAULT_MEMORY, config=True,
                         help="address-space cap (bytes) of each visitor's kernel; 0: no cap")

    @default("kernel_manager_class")
    def _app_kernel_manager_class(self) -> str:
        return "workbench.ui.app_server.VisitorKernelManager"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._visitor_since: dict[str, float] = {}

    async def cull_kernel_if_idle(self, kernel_id: str) -> Any:
        kernel = self._kernels.get(kernel_id)
        if kernel is None or not getattr(kernel, "visitor", False):
            return None
        # A preheated kernel's last activity is its preheating, maybe long ago: handed to a visitor, it
        # would be culled before the visitor's page connects. Idle time counts from when the culler
        # first sees it outside the pool (Voilà skips pooled kernels before calling this).
        for gone in set(self._visitor_since) - set(self._kernels):
            del self._visitor_since[gone]
        since = self._visitor_since.setdefault(kernel_id, time.monotonic())
        if time.monotonic() - since < self.cull_idle_timeout:
            return None
        return await super().cull_kernel_if_idle(kernel_id)


V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"


class V1KernelConnection(ZMQChannelsWebsocketConnection):
    """A kernel websocket that serves only clients speaking the v1 protocol (JupyterLab 4, Notebook 7,
    Voilà 0.5 all do); a legacy client is closed before anything it sends reaches the kernel."""

    def handle_incoming_message(self, incoming_msg: Any) -> None:
        if self.subprotocol != V1_PROTOCOL:
            self.log.warning("closing a kernel websocket without the %s subprotocol", V1_PROTOCOL)
            self.websocket_handler.close(1008, f"use the {V1_PROTOCOL} subprotocol")
            return
        super().handle_incoming_message(incoming_msg)
