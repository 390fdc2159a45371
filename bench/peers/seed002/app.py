"""Seed 002 ("Bistro92 High-Concurrency API"), rebuilt from its README in
../shared/seeds for measurement beside orderbus.

What the README specifies, and this file does:
  - FastAPI + uvicorn, the `databases` library on aiosqlite;
  - SQLite in WAL mode, busy_timeout 30 s;
  - one asyncio.Lock serializing every write;
  - POST /api/order -> 201 with the stored order, then a "new_order"
    broadcast to every WebSocket on /ws/orders ("initial" on connect);
  - GET /api/orders, newest first, with line items.

Durability: SQLite's synchronous setting is FULL here (Debian builds
SQLite with DEFAULT_SYNCHRONOUS=2 and DEFAULT_WAL_SYNCHRONOUS=2; startup
checks it and refuses to run otherwise), so a commit in WAL mode syncs the
WAL before it returns: a 201 means the order is on disk.

Run:  BISTRO_DB=/tmp/x/bistro92.db python3 -m uvicorn app:app --port 8001
"""

import asyncio
import datetime
import os
from typing import List

import databases
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

DB_PATH = os.environ.get("BISTRO_DB", "./bistro92.db")
database = databases.Database(f"sqlite:///{DB_PATH}")
app = FastAPI(title="Bistro92 High-Concurrency API (seed 002)")
write_lock = asyncio.Lock()


class Item(BaseModel):
    name: str = Field(..., min_length=1, max_length=200)
    quantity: int = Field(..., ge=1, le=1000)


class OrderCreate(BaseModel):
    table: str = Field(..., min_length=1, max_length=200)
    items: List[Item] = Field(..., min_items=1, max_items=100)


class ConnectionManager:
    """Tracks the live WebSockets and sends each event to all of them."""

    def __init__(self) -> None:
        self.active: List[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        if websocket in self.active:
            self.active.remove(websocket)

    async def broadcast(self, message: dict) -> None:
        for websocket in list(self.active):
            try:
                await websocket.send_json(message)
            except Exception:
                self.disconnect(websocket)


manager = ConnectionManager()


@app.on_event("startup")
async def startup() -> None:
    await database.connect()
    await database.execute("PRAGMA journal_mode = WAL;")
    await database.execute("PRAGMA busy_timeout = 30000;")
    sync = await database.fetch_val("PRAGMA synchronous;")
    if sync < 2:
        raise RuntimeError(f"SQLite synchronous={sync}: commits would not be durable")
    await database.execute(
        """CREATE TABLE IF NOT EXISTS orders (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               table_name TEXT NOT NULL,
               created_at TEXT NOT NULL)"""
    )
    await database.execute(
        """CREATE TABLE IF NOT EXISTS order_items (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               order_id INTEGER NOT NULL REFERENCES orders(id),
               name TEXT NOT NULL,
               quantity INTEGER NOT NULL)"""
    )


@app.on_event("shutdown")
async def shutdown() -> None:
    await database.disconnect()


async def fetch_orders() -> list:
    rows = await database.fetch_all(
        "SELECT id, table_name, created_at FROM orders ORDER BY id DESC"
    )
    items = await database.fetch_all(
        "SELECT order_id, name, quantity FROM order_items ORDER BY id"
    )
    by_order: dict = {}
    for item in items:
        by_order.setdefault(item["order_id"], []).append(
            {"name": item["name"], "quantity": item["quantity"]}
        )
    return [
        {
            "id": row["id"],
            "table": row["table_name"],
            "items": by_order.get(row["id"], []),
            "created_at": row["created_at"],
        }
        for row in rows
    ]


@app.post("/api/order", status_code=201)
async def create_order(order: OrderCreate) -> dict:
    created_at = datetime.datetime.now().replace(microsecond=0).isoformat()
    async with write_lock:
        async with database.transaction():
            order_id = await database.execute(
                "INSERT INTO orders (table_name, created_at) VALUES (:t, :c)",
                {"t": order.table, "c": created_at},
            )
            for item in order.items:
                await database.execute(
                    "INSERT INTO order_items (order_id, name, quantity) "
                    "VALUES (:o, :n, :q)",
                    {"o": order_id, "n": item.name, "q": item.quantity},
                )
    result = {
        "id": order_id,
        "table": order.table,
        "items": [item.dict() for item in order.items],
        "created_at": created_at,
    }
    await manager.broadcast({"type": "new_order", "order": result})
    return result


@app.get("/api/orders")
async def list_orders() -> list:
    return await fetch_orders()


@app.websocket("/ws/orders")
async def orders_socket(websocket: WebSocket) -> None:
    await manager.connect(websocket)
    try:
        await websocket.send_json({"type": "initial", "orders": await fetch_orders()})
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        manager.disconnect(websocket)
    except Exception:
        manager.disconnect(websocket)
