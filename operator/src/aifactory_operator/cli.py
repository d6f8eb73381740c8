"""The command line: `aifactory run | status | demo | crds | cluster up|down|status | audit verify|show |
bundle write|verify|push`.

Installed as `aifactory` and as `kubectl-aifactory`, so that `kubectl aifactory status` works too."""

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .constants import OPERATOR_NAMESPACE
from .devcluster import DevClusterError

if TYPE_CHECKING:
    from .policy.audit import ChainReport

AUDIT_ROW = "{!s:>10}  {!s:<24}  {!s:<24}  {!s:<40}  {!s}"


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
    run.add_argument(
        "--peering",
        default=None,
        help="run as one of several replicas, peering through this ClusterKopfPeering",
    )
    run.set_defaults(func=_run)

    status = commands.add_parser(
        "status", help="factories, pools, GPUs by topology domain, tenants, training queue, endpoints"
    )
    status.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    status.set_defaults(func=_status)

    demo = commands.add_parser("demo", help="the main job: a sample sovereign factory, reconciled")
    demo.add_argument(
        "--once", action="store_true", help="exit after printing the cluster (no wait for Ctrl-C)"
    )
    demo.set_defaults(func=_demo)

    crds = commands.add_parser("crds", help="generate crds/*.yaml from the API models")
    crds.add_argument("--out", type=Path, required=True, help="folder to write the CRDs into")
    crds.add_argument("--chart", type=Path, help="also write the Helm chart's generated files there")
    crds.add_argument("--docs", type=Path, help="also write a reference page per custom resource there")
    crds.add_argument("--settings-page", type=Path, help="also write the operator's settings page there")
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

    audit = commands.add_parser("audit", help="the hash-chained audit log of policy refusals")
    audit_actions = audit.add_subparsers(required=True, metavar="ACTION")
    verify = audit_actions.add_parser("verify", help="check that no entry was altered, removed or reordered")
    verify.set_defaults(func=_audit_verify)
    show = audit_actions.add_parser("show", help="print the entries as a table")
    show.add_argument("--tail", type=int, default=None, metavar="N", help="only the last N entries")
    show.set_defaults(func=_audit_show)
    for action in (verify, show):
        action.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
        action.add_argument(
            "--namespace",
            default=OPERATOR_NAMESPACE,
            help=f"where the log lives (default: {OPERATOR_NAMESPACE})",
        )
    _add_bundle_commands(commands)
    return parser


def _add_bundle_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    bundle = commands.add_parser("bundle", help="the air-gap bundle: write it, verify it, push it")
    actions = bundle.add_subparsers(required=True, metavar="ACTION")
    write = actions.add_parser("write", help="pack the image, chart, CRDs and SBOM (run by make bundle)")
    write.add_argument("--image", type=Path, default=Path("build/image"), help="OCI layout of the image")
    write.add_argument("--chart", type=Path, required=True, help="the packaged chart (.tgz)")
    write.add_argument("--crds", type=Path, default=Path("crds"), help="folder of CRD files")
    write.add_argument("--sbom", type=Path, default=Path("build/sbom.cdx.json"), help="the image's SBOM")
    write.add_argument("--version", action="append", default=[], metavar="NAME=VERSION", help="recorded")
    write.add_argument("--out", type=Path, required=True, help="the bundle archive to write")
    write.set_defaults(func=_bundle_write)
    verify = actions.add_parser("verify", help="check every file against the manifest")
    verify.add_argument("bundle", type=Path)
    verify.add_argument("--sha256", help="the bundle's sha256 as published out of band")
    verify.set_defaults(func=_bundle_verify)
    push = actions.add_parser("push", help="verify, then load the image and chart into a registry")
    push.add_argument("bundle", type=Path)
    push.add_argument("--registry", required=True, help="host:port of the site's registry")
    push.add_argument("--sha256", help="the bundle's sha256 as published out of band")
    push.add_argument("--plain-http", action="store_true", help="the registry speaks http (127.0.0.1 only)")
    push.add_argument("--helm", default="helm", help="the helm binary")
    push.set_defaults(func=_bundle_push)


def _bundle_write(args: argparse.Namespace) -> int:
    from .bundle import BundleInputs, sha256_of, write_bundle

    versions = dict(v.split("=", 1) for v in args.version)
    manifest = write_bundle(BundleInputs(args.image, args.chart, args.crds, args.sbom, versions), args.out)
    print(f"wrote {args.out}: {len(manifest['files'])} files, image {manifest['image']['digest']}")
    print(f"sha256 {sha256_of(args.out)}  (publish it apart from the bundle; verify and push check it)")
    return 0


def _checked_sha256(bundle: Path, expected: str | None) -> str | None:
    from .bundle import sha256_of

    if expected and sha256_of(bundle) != expected.removeprefix("sha256:"):
        return f"{bundle}: sha256 is not the published {expected}"
    return None


def _bundle_verify(args: argparse.Namespace) -> int:
    import tempfile

    from .bundle import unpack, verify_bundle

    problems = [p for p in [_checked_sha256(args.bundle, args.sha256)] if p]
    with tempfile.TemporaryDirectory() as folder:
        unpack(args.bundle, Path(folder))
        problems += verify_bundle(Path(folder))
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{args.bundle}: {'intact' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


def _bundle_push(args: argparse.Namespace) -> int:
    from .bundle import BundleError, push_bundle

    if problem := _checked_sha256(args.bundle, args.sha256):
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        pushed = push_bundle(args.bundle, args.registry, args.helm, plain_http=args.plain_http)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    repository, digest = pushed.image.split("@")
    print(f"image {pushed.image}")
    print(f"chart {pushed.chart} {pushed.version}")
    print(
        f"install: helm install aifactory {pushed.chart} --version {pushed.version}"
        f" -n aifactory-system --create-namespace --set image.repository={repository}"
        f" --set image.digest={digest}"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from .operator_main import run_operator

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(Path(args.kubeconfig).resolve())
    run_operator(
        verbose=args.verbose, liveness=args.liveness, metrics_port=args.metrics_port, peering=args.peering
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from .constants import API_VERSION
    from .kube.client import Kube, load_config
    from .statusview import format_status

    kube = Kube(load_config(args.kubeconfig))
    print(
        format_status(
            factories=kube.list(API_VERSION, "AIFactory"),
            nodes=kube.list("v1", "Node"),
            pods=kube.list("v1", "Pod", field_selector="status.phase!=Succeeded,status.phase!=Failed"),
            jobs=kube.list(API_VERSION, "TrainingJob"),
            endpoints=kube.list(API_VERSION, "ModelEndpoint"),
            now=datetime.now(UTC),
        ),
        end="",
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(once=args.once)


def _crds(args: argparse.Namespace) -> int:
    from .chartgen import write_chart_files
    from .crdgen import write_crds
    from .docsgen import write_references, write_settings_page

    for path in write_crds(args.out):
        print(path)
    for path in write_chart_files(args.chart) if args.chart else []:
        print(path)
    for path in write_references(args.docs) if args.docs else []:
        print(path)
    if args.settings_page:
        print(write_settings_page(args.settings_page))
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


def _audit_verify(args: argparse.Namespace) -> int:
    """The chain, and its end against the anchor: exit 1 on any entry altered, removed or reordered."""
    from .kube.auditlog import AuditLog
    from .kube.client import Kube, load_config
    from .policy.audit_anchor import AnchorUnreadable, verify_anchored

    log = AuditLog(Kube(load_config(args.kubeconfig)), namespace=args.namespace)
    try:
        # The anchor first: it is written after the entries, so the log read next is never behind it
        # while the operator appends.
        anchor = log.read_anchor()
        report = verify_anchored(log.read(), anchor)
    except AnchorUnreadable as error:
        print(f"audit log BROKEN: the anchor was rewritten: {error}")
        return 1
    if not report.ok:
        where = f" at entry {report.first_bad}" if report.first_bad is not None else ""
        print(f"audit log BROKEN{where}: {report.problem}")
        return 1
    print(f"audit log OK: {report.entries} entries, head {report.head}, {_describe_anchor(report)}")
    return 0


def _describe_anchor(report: "ChainReport") -> str:
    if report.anchored is None:
        return "no anchor yet (the log is empty)"
    ahead = report.entries - report.anchored
    note = f" ({ahead} written after it, their chain intact)" if ahead else ""
    return f"anchored at {report.anchored}{note}"


def _audit_show(args: argparse.Namespace) -> int:
    entries = _read_audit_log(args)
    shown = entries if args.tail is None else entries[max(len(entries) - args.tail, 0) :]
    print(AUDIT_ROW.format("SEQ", "TIME", "RULE", "OBJECT", "MESSAGE"))
    for entry in shown:
        print(_format_audit_row(entry))
    return 0


def _read_audit_log(args: argparse.Namespace) -> list[dict[str, object]]:
    from .kube.auditlog import AuditLog
    from .kube.client import Kube, load_config

    return AuditLog(Kube(load_config(args.kubeconfig)), namespace=args.namespace).read()


def _format_audit_row(entry: dict[str, object], width: int = 80) -> str:
    """One table row; an unreadable entry shows why in place of its message."""
    from .policy.audit import DAMAGE

    namespace, name = entry.get("namespace") or "", entry.get("name") or ""
    target = f"{namespace}/{name}" if namespace else str(name)
    message = f"<damaged: {entry[DAMAGE]}>" if DAMAGE in entry else str(entry.get("message", ""))
    message = message if len(message) <= width else message[: width - 3] + "..."
    return AUDIT_ROW.format(entry["seq"], entry.get("time", ""), entry.get("rule", ""), target, message)


if __name__ == "__main__":
    sys.exit(main())
