"""`aitrapp ids ...`: compute deterministic client ids from the shell."""

from __future__ import annotations

import json

import typer

from aitrapp import broker_tag, order_client_id, plan_client_id
from aitrapp.exceptions import AitrappError

app = typer.Typer(help="Deterministic client order ids.", no_args_is_help=True)

TAGS = ("ENTRY", "STOP", "TP")


@app.command("plan")
def plan(
    symbol: str = typer.Option(..., help="Trading symbol, e.g. RELIANCE"),
    side: str = typer.Option(..., help="BUY or SELL"),
    entry: str = typer.Option(..., help="Entry price in rupees, e.g. 2500.05"),
    stop: str = typer.Option(..., help="Stop price in rupees"),
    tp: str = typer.Option(..., help="Take-profit price in rupees"),
    qty: int = typer.Option(..., help="Quantity in units"),
    strategy: str = typer.Option(..., help="Strategy name"),
    config_sha: str = typer.Option(..., help="Hash of the effective config"),
    signal_ts: int = typer.Option(..., help="Exchange timestamp of the signal tick, UTC ns"),
    scale_out: bool = typer.Option(False, help="Also show TP1/TP2 ids"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Print the plan id, the order client ids and their Kite tags."""
    try:
        pid = plan_client_id(
            symbol, side.upper(), entry, stop, tp, qty, strategy, config_sha, signal_ts
        )
        tags = (*TAGS, "TP1", "TP2") if scale_out else TAGS
        orders = {t: order_client_id(t, pid) for t in tags}
        brokers = {t: broker_tag(cid) for t, cid in orders.items()}
    except (AitrappError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps({"plan_id": pid, "orders": orders, "broker_tags": brokers}))
        return
    typer.echo(f"plan_id  {pid}")
    for t in tags:
        typer.echo(f"{t:<6}   {orders[t]:<32} tag={brokers[t]}")


@app.command("tag")
def tag(order_client_id_: str = typer.Argument(..., metavar="ORDER_CLIENT_ID")) -> None:
    """Print the Kite tag (<= 20 chars) of an order client id."""
    try:
        typer.echo(broker_tag(order_client_id_))
    except AitrappError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
