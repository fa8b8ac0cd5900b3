"""Installation commands, `python -m services.identity.cli`: the first system admin, centre admins, device keys.

Run against the database of IDENTITY_DATABASE_URL (created and migrated if needed), with the same
HALL_* secrets as the service, so the events they publish reach the other services through the relay.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity import service
from services.identity.config import Settings, get_settings
from services.identity.schemas import DeviceKeyIn, UserIn
from shared import clock
from shared.db import ensure_database, make_engine, make_sessionmaker
from shared.errors import AppError
from shared.migrate import upgrade_async
from shared.pii import PersonalData

T = TypeVar("T")


def _context(settings: Settings) -> service.Context:
    hall = settings.hall
    return service.Context(settings=settings, pii=PersonalData(
        base64.b64decode(hall.pii_hash_key.get_secret_value()),
        base64.b64decode(hall.pii_encryption_key.get_secret_value()), hall.notify_seal_public_key))


async def _in_transaction(settings: Settings, work: Callable[[service.Context, AsyncSession], Awaitable[T]]) -> T:
    clock.set_clock(settings.hall.build_clock())
    await ensure_database(settings.database_url)
    await upgrade_async("identity", settings.database_url)
    engine = make_engine(settings.database_url, application_name="identity-cli")
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await work(_context(settings), session)
    finally:
        await engine.dispose()


def run(work: Callable[[service.Context, AsyncSession], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run one unit of work against the identity database; an application error becomes a CLI error."""
    try:
        return asyncio.run(_in_transaction(settings or get_settings(), work))
    except AppError as exc:
        raise click.ClickException(exc.detail) from exc


def _create_user(username: str, password: str, display_name: str, role: str, centers: list[str],
                 settings: Settings | None = None) -> str:
    try:
        data = UserIn(username=username, password=SecretStr(password), display_name=display_name,
                      role=role, centers=centers)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc

    async def work(ctx: service.Context, session: AsyncSession) -> str:
        return (await service.create_user(ctx, session, data, actor=None)).id

    return run(work, settings)


@click.group()
def cli() -> None:
    """Identity service installation commands (统一身份认证)."""


@cli.command("create-system-admin")
@click.option("--username", required=True)
@click.option("--display-name", default="系统管理员", show_default=True)
@click.password_option(help="asked for when not given (at least 10 characters)")
def create_system_admin(username: str, display_name: str, password: str) -> None:
    """Create a system admin (every centre)."""
    user_id = _create_user(username, password, display_name, "system_admin", ["*"])
    click.echo(f"system admin {username} created (id {user_id})")


@cli.command("create-center-admin")
@click.option("--username", required=True)
@click.option("--center", "centers", required=True, multiple=True, help="repeatable")
@click.option("--display-name", default="中心管理员", show_default=True)
@click.password_option(help="asked for when not given (at least 10 characters)")
def create_center_admin(username: str, centers: tuple[str, ...], display_name: str, password: str) -> None:
    """Create a centre admin for one or more centres."""
    user_id = _create_user(username, password, display_name, "center_admin", list(centers))
    click.echo(f"centre admin {username} of {', '.join(centers)} created (id {user_id})")


@cli.command("create-device-key")
@click.option("--role", required=True, type=click.Choice(["kiosk", "display", "evaluator", "terminal"]))
@click.option("--center", required=True)
@click.option("--window", help="evaluators and terminals only")
@click.option("--label", required=True)
def create_device_key(role: str, center: str, window: str | None, label: str) -> None:
    """Create a device key and print it: this is the only time it is shown."""
    try:
        data = DeviceKeyIn(role=role, center_id=center, window=window, label=label)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc

    async def work(ctx: service.Context, session: AsyncSession) -> tuple[str, str]:
        device, key = await service.create_device_key(ctx, session, data, actor=None)
        return device.id, key

    device_id, key = run(work)
    click.echo(f"device key {device_id} ({role}, centre {center}{f', window {window}' if window else ''}):")
    click.echo(key)
    click.echo("store it in the device now: it is not shown again")


if __name__ == "__main__":
    cli()
