"""``learnloop serve|worker|migrate|demo`` and ``learnloop keys …``."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import typer
from rich.table import Table

from learnloop.cli.common import console, load_settings, opened, out
from learnloop.container import Container
from learnloop.core.auth import LOCAL_OPERATOR
from learnloop.core.errors import LearnloopError
from learnloop.logs import configure_logging

keys_app = typer.Typer(help="API keys (stored hashed; shown once).", no_args_is_help=True)


def run_server(
    container: Container, host: str, port: int, *, started: threading.Event | None = None
) -> None:
    import uvicorn

    from learnloop.api.app import create_app

    app = create_app(container)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    if started is not None:

        def _watch() -> None:
            while not server.started and not server.should_exit:
                threading.Event().wait(0.05)
            if server.started:
                started.set()

        threading.Thread(target=_watch, daemon=True).start()
    server.run()


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port."),
    workers: int | None = typer.Option(None, help="Job worker threads (default from settings)."),
    processes: int | None = typer.Option(
        None, help="HTTP server processes (default LEARNLOOP_API__PROCESSES, 1)."
    ),
    grpc_port: int | None = typer.Option(
        None,
        min=0,
        max=65535,
        help="Also serve the Open Inference Protocol over gRPC on this port "
        "(default: LEARNLOOP_GRPC__PORT when set, else no gRPC).",
    ),
) -> None:
    """Run the API server (with in-process job workers) on the local home."""
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_format)
    if workers is not None:
        settings.jobs.workers = workers
        os.environ["LEARNLOOP_JOBS__WORKERS"] = str(workers)  # for server processes too
    if processes is not None:
        settings.api.processes = processes
    if grpc_port is not None:
        settings.grpc.port = grpc_port
    container = Container(settings)
    grpc_server = None
    try:
        container.open()  # refuse corrupt/foreign databases before binding the port
        if settings.grpc.enabled and "port" in settings.grpc.model_fields_set:
            from learnloop.grpc.server import GrpcInferenceServer

            grpc_server = GrpcInferenceServer(
                container,
                settings.grpc.host,
                settings.grpc.port,
                max_workers=settings.grpc.max_workers,
                max_message_bytes=settings.grpc.max_message_bytes,
            )
            bound = grpc_server.start()
            console.print(f"gRPC (Open Inference Protocol v2) on {settings.grpc.host}:{bound}")
    except LearnloopError as e:
        console.print(f"[bold red]error:[/] {e.message}")
        container.close()
        raise typer.Exit(1) from None
    try:
        if settings.api.processes > 1:
            run_processes(host, port, settings.api.processes)
        else:
            run_server(container, host, port)
    finally:
        if grpc_server is not None:
            grpc_server.stop()
        container.close()


def run_processes(host: str, port: int, processes: int) -> None:
    """Several uvicorn processes on one port, each building its app from the settings."""
    import uvicorn

    console.print(f"serving with {processes} processes on {host}:{port}")
    uvicorn.run(
        "learnloop.api.app:app_from_settings",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_config=None,
        access_log=False,
    )


def worker(
    threads: int = typer.Option(1, help="Jobs run at once by this process."),
) -> None:
    """Run a job worker process (claims jobs from the shared database)."""
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_format)
    with opened(migrate=None) as c:
        runner = c.start_workers(threads)
        console.print(f"worker {runner.worker_id} running {threads} thread(s); Ctrl-C stops it")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        console.print("stopping worker")


def migrate() -> None:
    """Apply pending database migrations (refuses corrupt or foreign databases)."""
    container = Container(load_settings(), migrate=False)
    try:
        before, after = container.db.migrate()
    except LearnloopError as e:
        console.print(f"[bold red]error:[/] {e.message}")
        raise typer.Exit(1) from None
    finally:
        container.close()
    out.print(f"database at revision {after}" + (f" (was {before})" if before != after else ""))


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., help="admin, operator, ingest or reader."),
    name: str = typer.Option("", help="A name to recognise the key by."),
) -> None:
    """Create a key; the key itself is printed on the last line (and never again)."""
    with opened() as c:
        record, token = c.keys.create(role, name, actor=LOCAL_OPERATOR.name)
    console.print(f"created {record.role} key {record.id} ({record.name})")
    out.print(token)


@keys_app.command("list")
def keys_list() -> None:
    with opened() as c:
        keys = c.keys.list()
    table = Table("id", "name", "role", "created", "revoked")
    for k in keys:
        revoked = f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else ""
        table.add_row(k.id, k.name, k.role, f"{k.created_at:%Y-%m-%d %H:%M}", revoked)
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    with opened() as c:
        c.keys.revoke(key_id, actor=LOCAL_OPERATOR.name)
    out.print(f"revoked {key_id}")


DEMO_DATA = Path("../shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv")


def demo(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port."),
    data: Path = typer.Option(
        Path(os.environ.get("LEARNLOOP_DEMO_DATA", str(DEMO_DATA))), help="AI4I 2020 CSV."
    ),
) -> None:
    """Start the server, train the demo model as a job, set champion, and call predict."""
    from learnloop.cli.demo import run_demo

    settings = load_settings()
    configure_logging("WARNING", settings.logging.json_format)
    run_demo(settings, host, port, data)
