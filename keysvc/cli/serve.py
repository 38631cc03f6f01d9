"""``keysvc serve``: run the key service."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from keysvc.config import ConfigError, load_settings


@click.group()
def cli() -> None:
    """keysvc: field-level encryption and tokenization key service."""


@cli.command()
@click.option("--dev", is_flag=True, help="Embedded default: SQLite + local KEK under --data-dir, dev token.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML config file (KEYSVC_<SECTION>_<KEY> env vars override it).",
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory (default ./.keysvc).")
@click.option("--listen", help="gRPC address HOST:PORT (default 127.0.0.1:50051; port 0 picks one).")
@click.option("--store-url", help="sqlite:///PATH or postgresql://...")
@click.option("--kek-provider", type=click.Choice(["local", "vault-transit"]), help="Who wraps data keys.")
@click.option("--vault-mount", help="Transit mount path (default transit).")
@click.option("--vault-key", help="Transit key name (default keysvc-kek).")
@click.option("--metrics-listen", help="Prometheus /metrics address HOST:PORT (all workers' sum).")
@click.option("--health-listen", help="Plaintext health-only gRPC address HOST:PORT (probes under mTLS).")
@click.option("--workers", type=click.IntRange(min=1), help="Forked processes sharing the port.")
@click.option("--reflection/--no-reflection", default=None, help="gRPC server reflection (off by default).")
@click.option("--log-level", default="INFO", show_default=True)
def serve(
    dev: bool,
    config_path: Path | None,
    data_dir: str | None,
    listen: str | None,
    store_url: str | None,
    kek_provider: str | None,
    vault_mount: str | None,
    vault_key: str | None,
    metrics_listen: str | None,
    health_listen: str | None,
    workers: int | None,
    reflection: bool | None,
    log_level: str,
) -> None:
    """Run the service.

    \b
    Examples:
      keysvc serve --dev                        # SQLite + local KEK in ./.keysvc
      keysvc serve --dev --listen 127.0.0.1:0   # pick a free port
      keysvc serve --config /etc/keysvc/keysvc.toml
      keysvc serve --dev --workers 2 --metrics-listen 127.0.0.1:9090
    """
    from keysvc.server import app, logs

    if not dev and config_path is None:
        raise click.UsageError("pass --dev for the embedded default or --config FILE")
    logs.configure(log_level)
    try:
        settings = load_settings(
            config_path,
            overrides={
                "dev": dev or None,
                "data_dir": data_dir,
                "server.listen": listen,
                "store.url": store_url,
                "kek.provider": kek_provider,
                "vault.mount": vault_mount,
                "vault.key": vault_key,
                "server.metrics_listen": metrics_listen,
                "server.health_listen": health_listen,
                "server.workers": workers,
                "server.reflection": reflection,
            },
        )
        app.serve(settings, announce=_announce)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _announce(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
