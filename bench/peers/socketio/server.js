// Seed 004 ("Scalable Real-Time Restaurant Ordering"), rebuilt from its
// README in ../shared/seeds for measurement beside orderbus.
//
// Clients at a table join the table's room, staff join "kitchen".  An
// "add-item" event from any client is broadcast to its table's room and
// to the kitchen through the Redis adapter: the adapter publishes it on
// Redis Pub/Sub so every server process delivers it to its own sockets,
// which is how the seed scales out.  Nothing is stored: a server or Redis
// restart loses what was in flight, and a client that reconnects gets no
// replay.
//
//   PORT=3000 REDIS_URL=redis://127.0.0.1:6379 node server.js
'use strict';

const http = require('http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

const port = Number(process.env.PORT || 3000);
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  pub.on('error', (err) => console.error('redis pub:', err.message));
  sub.on('error', (err) => console.error('redis sub:', err.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const server = http.createServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? 200 : 404).end();
  });
  const io = new Server(server, {
    adapter: createAdapter(pub, sub),
    serveClient: false,
    // Browsers open with long-polling first; the bench goes straight to
    // WebSocket, which the server accepts either way.
    transports: ['polling', 'websocket'],
  });

  io.on('connection', (socket) => {
    socket.on('join', (room) => {
      if (typeof room === 'string' && room.length > 0 && room.length <= 64) {
        socket.join(room);
      }
    });
    socket.on('add-item', (update) => {
      if (!update || typeof update.table !== 'string') {
        return;
      }
      io.to(update.table).to('kitchen').emit('order', update);
    });
  });

  server.listen(port, '127.0.0.1', () => {
    console.log(`socket.io peer listening on 127.0.0.1:${port}, redis ${redisUrl}`);
  });
  const stop = () => {
    // io.close() disconnects every socket and closes the HTTP server; the
    // timer bounds the wait for clients that never answer
    setTimeout(() => process.exit(0), 2000).unref();
    io.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
