// A service in another language: submits a job to the songqueue HTTP API with plain fetch
// (Node 18+, no packages), follows its Server-Sent Events, and downloads its first song.
// Usage: node node_client.mjs BASE_URL KEY OUT_FILE PROMPT
// Prints one JSON line: {"id", "states": [...], "end": state, "bytes", "etag", "content_type"}.
import { writeFile } from "node:fs/promises";

const [base, key, out, prompt] = process.argv.slice(2);
const auth = { Authorization: `Bearer ${key}` };

async function submit() {
  const res = await fetch(`${base}/v1/jobs`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json", "Idempotency-Key": `node-${prompt}` },
    body: JSON.stringify({ provider: "udio", request: { prompt, seed: 11 } }),
  });
  if (res.status !== 201) throw new Error(`submit: ${res.status} ${await res.text()}`);
  return res.json();
}

// Parses the text/event-stream body: blocks separated by a blank line, "event:" and "data:" fields.
async function* events(url) {
  const res = await fetch(url, { headers: { ...auth, Accept: "text/event-stream" } });
  if (!res.ok) throw new Error(`events: ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) yield { name, data: JSON.parse(data.join("\n")) };
    }
  }
}

const job = await submit();
const states = [];
let end = null;
for await (const { name, data } of events(`${base}${job.links.events}`)) {
  if (name === "job") states.push(data.state);
  if (name === "end") { end = data; break; }
}
if (end.state !== "SUCCEEDED") throw new Error(`job ended ${end.state}: ${JSON.stringify(end.error)}`);
const song = await fetch(`${base}${end.links.songs[0].audio}`, { headers: auth });
if (!song.ok) throw new Error(`download: ${song.status}`);
const bytes = Buffer.from(await song.arrayBuffer());
await writeFile(out, bytes);
console.log(JSON.stringify({ id: job.id, states, end: end.state, bytes: bytes.length,
                             etag: song.headers.get("etag"), content_type: song.headers.get("content-type") }));
