"""The ``workbench`` command line: the Python API's steps and listings, one sub-command each.

    workbench export   MODEL TARGET [--opset 18] [--exporter auto|dynamo|torchscript] …
    workbench convert  MODEL TARGET [--level extended] [--fp16-weights] …
    workbench quantize MODEL TOOL [--method static] [--calibration DIR] [-o key=value] …
    workbench backends | zoo | describe MODEL | artifacts

The targets, tools and their methods are the registered steps (``workbench.core.registry``): ``--help``
lists them, and a plugin's step appears there as soon as it is registered.

MODEL is a zoo name (``workbench zoo``) or a path. Every step prints the artifact it wrote and its
validation against the original; ``--json`` prints the manifest entry instead, ``--strict`` exits with
status 2 when the validation fails. Errors print one line with the fix and exit with status 1.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Sequence
from typing import Any


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a zoo name (see `workbench zoo`) or a model file/folder")
    p.add_argument("--out", help="where to write the artifact (must not exist); default: a new name in the workspace")
    p.add_argument("--workspace", help="the artifacts folder (default $WORKBENCH_ARTIFACTS or <project root>/workbench-artifacts)")
    p.add_argument("--timeout", type=float, help="seconds before the worker running the step is stopped")
    p.add_argument("--no-validate", dest="validate", action="store_false", help="skip the validation run")
    p.add_argument("--no-cache", dest="cache", action="store_false", help="redo the step even if cached")
    p.add_argument("--in-process", dest="isolate", action="store_false",
                   help="run the step in this process instead of the worker subprocess")
    p.add_argument("--strict", action="store_true", help="exit with status 2 when the validation fails")
    p.add_argument("--json", action="store_true", help="print the artifact's manifest entry as JSON")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other option of the step (Python literals: 0.5, True, 'text'); repeatable")


def _targets(kind: str) -> str:
    """``a | b | c (or aliases …)`` for a step kind's help, from the registry."""
    from workbench.core import registry

    found = registry.steps(kind)
    aliases = [a for s in found for a in s.aliases]
    return " | ".join(s.target for s in found) + (f" (or {', '.join(aliases)})" if aliases else "")


def _methods() -> str:
    from workbench.core import registry

    return "; ".join(f"{' | '.join(s.methods)} ({s.target})" for s in registry.steps("quantize") if s.methods)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; step targets, tools and methods come from the registry."""
    from workbench.core import registry
    from workbench.steps.export import EXPORTERS
    from workbench.steps.export_torchscript import METHODS as SCRIPT_METHODS

    parser = argparse.ArgumentParser(prog="workbench", description="Deployment Workbench: export, convert, quantize, "
                                     "and inspect models; every step is validated against the original.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("export", help=f"export a torch model ({', '.join(registry.step_targets('export'))})")
    _common(p)
    p.add_argument("target", choices=registry.step_targets("export"))
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--exporter", choices=EXPORTERS, default=EXPORTERS[0])
    p.add_argument("--method", choices=SCRIPT_METHODS, default=SCRIPT_METHODS[0], help="TorchScript method")
    p.add_argument("--static", dest="dynamic", action="store_false", help="fixed shapes (no dynamic batch/sequence)")

    p = sub.add_parser("convert", help=f"convert ({', '.join(registry.step_targets('convert'))})")
    _common(p)
    p.add_argument("target", help=_targets("convert"))
    p.add_argument("--level", choices=["basic", "extended", "all"], help="ONNX Runtime graph optimization level")
    p.add_argument("--tool", choices=["onnxslim", "onnxsim"], help="ONNX simplifier")
    p.add_argument("--fp16-weights", action="store_true", default=None, help="OpenVINO: store weights in FP16")
    p.add_argument("--precision", choices=["fp32", "fp16"], help="Core ML compute precision")

    p = sub.add_parser("quantize", help=f"quantize ({', '.join(registry.step_targets('quantize'))})")
    _common(p)
    p.add_argument("tool", help=_targets("quantize"))
    p.add_argument("--method", help=_methods())
    p.add_argument("--calibration", help="a folder of .npy/.npz calibration samples (default: the model's own data)")
    p.add_argument("--samples", type=int, help="number of calibration samples")
    p.add_argument("--calibrate", choices=["minmax", "entropy", "percentile"], help="ONNX Runtime calibration method")
    p.add_argument("--per-channel", dest="per_channel", action="store_true", default=None)
    p.add_argument("--per-tensor", dest="per_channel", action="store_false")
    p.add_argument("--mode", help="NNCF weight compression mode: int8 | int8_sym | int4 | int4_asym")

    sub.add_parser("backends", help="every runtime: available or not, why, and the fix")
    sub.add_parser("zoo", help="the built-in models")
    p = sub.add_parser("describe", help="format, inputs, outputs, size and lineage of a model")
    p.add_argument("model")
    p.add_argument("--workspace", help="the artifacts folder whose manifest holds the model's lineage")
    p = sub.add_parser("artifacts", help="the workspace manifest: every artifact and its lineage")
    p.add_argument("--workspace")
    p.add_argument("--json", action="store_true")
    return parser


def _options(pairs: list[str]) -> dict[str, Any]:
    from workbench.core.errors import InputError

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"option {pair!r} is not KEY=VALUE", "write e.g. -o per_channel=False")
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def _run_step(args: argparse.Namespace) -> Any:
    from workbench import api

    common = dict(path=args.out, timeout=args.timeout, validate=args.validate, cache=args.cache, isolate=args.isolate)
    extra = _options(args.option)
    if args.command == "export":
        return api.export(args.model, args.target, opset=args.opset, exporter=args.exporter, method=args.method,
                         dynamic=args.dynamic, **common, **extra)
    if args.command == "convert":
        return api.convert(args.model, args.target, level=args.level, tool=args.tool, fp16_weights=args.fp16_weights,
                          precision=args.precision, **common, **extra)
    for name in ("calibrate", "per_channel", "mode"):
        if getattr(args, name) is not None:
            extra[name] = getattr(args, name)
    return api.quantize(args.model, args.tool, args.method, calibration=args.calibration, samples=args.samples,
                       **common, **extra)


def _print_step(result: Any, args: argparse.Namespace) -> int:
    from workbench.steps.workspace import read_manifest, relpath

    v = getattr(result, "validation", None)
    if args.json:
        key = relpath(result.path)
        entry = next((a for a in read_manifest()["artifacts"] if a.get("path") == key), {})
        print(json.dumps({"artifact": str(result.path), **entry}, indent=1, default=str))
    else:
        print(f"wrote {result.path}  ({result.format}, {result.size_bytes or 0:,} bytes"
              + (", cached" if result.metadata.get("cached") else "") + ")")
        print(f"lineage: {' → '.join(e.step for e in result.lineage)}")
        if v is not None:
            print(f"validation: {v.summary()}")
    if args.strict and v is not None and not v.skipped and not v:
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script; returns the exit status."""
    import warnings

    from workbench.core.errors import WorkbenchError

    warnings.filterwarnings("ignore")
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "workspace", None):
            from workbench.steps.workspace import set_workspace

            set_workspace(args.workspace)
        if args.command in ("export", "convert", "quantize"):
            try:
                result = _run_step(args)
            except TypeError as err:  # an -o option the step does not take
                from workbench.core.errors import InputError

                raise InputError(f"{args.command}: {err}", f"see `workbench {args.command} --help`") from None
            return _print_step(result, args)
        if args.command == "backends":
            from workbench.api import (
                backends,  # not wb.backends: the subpackage shadows it once imported
            )

            print(backends().to_string())
        elif args.command == "zoo":
            from workbench import zoo

            print(zoo.list().to_string())
        elif args.command == "describe":
            from workbench.api import model_of  # an artifact gets its lineage from the manifest

            print(model_of(args.model).describe())
        elif args.command == "artifacts":
            from workbench.steps.workspace import artifacts, read_manifest

            if args.json:
                print(json.dumps(read_manifest(), indent=1, default=str))
            else:
                frame = artifacts()
                cols = [c for c in ("path", "format", "step", "precision", "size_bytes", "seconds") if c in frame]
                print(frame[cols].to_string() if len(frame) else "no artifacts yet")
        return 0
    except WorkbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
