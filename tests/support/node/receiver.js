// A webhook receiver as a Node.js service would write it: the `standardwebhooks` npm package
// verifies each delivery on its raw body with the secret in RECEIVER_SECRET (whsec_...).
// Prints its port on the first line of stdout; GET /deliveries answers what it received:
// [{id, event, verified, error, signatures, answered}] in arrival order. POST /status/<code> sets the
// answer to later deliveries (200 until set), so a test can take it down and bring it back; POST
// /secret (the body: whsec_...) replaces the secret, as a receiver's operator does after a rotation.
const http = require("http");
const { Webhook } = require("standardwebhooks");

let webhook = new Webhook(process.env.RECEIVER_SECRET);
const deliveries = [];
let answer = 200;

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (req.method === "GET" && req.url === "/deliveries") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(deliveries));
      return;
    }
    if (req.method === "POST" && req.url === "/secret") {
      webhook = new Webhook(body.toString("utf8").trim());
      res.writeHead(204);
      res.end();
      return;
    }
    const set = req.url.match(/^\/status\/(\d{3})$/);
    if (req.method === "POST" && set) {
      answer = Number(set[1]);
      res.writeHead(204);
      res.end();
      return;
    }
    let verified = false;
    let error = null;
    let event = null;
    try {
      event = webhook.verify(body.toString("utf8"), req.headers).event;
      verified = true;
    } catch (e) {
      error = String(e.message || e);
    }
    const signatures = (req.headers["webhook-signature"] || "").split(" ").filter((s) => s);
    deliveries.push({ id: req.headers["webhook-id"] || null, event, verified, error,
                      signatures: signatures.map((s) => s.split(",")[0]), answered: verified ? answer : 401 });
    res.writeHead(verified ? answer : 401);
    res.end();
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
