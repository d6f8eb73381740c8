"""The command line: `aifactory run | demo | crds | cluster up|down|status`."""

import argparse
import os
import sys
from pathlib import Path

from .devcluster import DevClusterError


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DevClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aifactory", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: off)"
    )
    run.set_defaults(func=_run)

    demo = commands.add_parser("demo", help="the main job: a sample sovereign factory, reconciled")
    demo.add_argument(
        "--once", action="store_true", help="exit after printing the cluster (no wait for Ctrl-C)"
    )
    demo.set_defaults(func=_demo)

    crds = commands.add_parser("crds", help="generate crds/*.yaml from the API models")
    crds.add_argument("--out", type=Path, required=True, help="folder to write the CRDs into")
    crds.set_defaults(func=_crds)

    cluster = commands.add_parser("cluster", help="the local control plane")
    actions = cluster.add_subparsers(required=True, metavar="ACTION")
    for name, help_text in (
        ("up", "build (if needed) and start it, wait until healthy"),
        ("down", "stop every process it started"),
        ("status", "show its processes"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.set_defaults(func=_cluster, action=name)
    return parser


def _run(args: argparse.Namespace) -> int:
    from .operator_main import run_operator

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(Path(args.kubeconfig).resolve())
    run_operator(verbose=args.verbose, liveness=args.liveness, metrics_port=args.metrics_port)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(once=args.once)


def _crds(args: argparse.Namespace) -> int:
    from .crdgen import write_crds

    for path in write_crds(args.out):
        print(path)
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from .devcluster import cluster_status, down, up
    from .devcluster.layout import default_layout, find_repo_root

    repo = find_repo_root(Path.cwd())
    layout = default_layout(repo)
    if args.action == "up":
        started = up(repo, layout)
        print(f"{'started' if started else 'already running'}; export KUBECONFIG={layout.kubeconfig}")
    elif args.action == "down":
        down(layout)
        print("stopped")
    else:
        print("\n".join(cluster_status(layout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
