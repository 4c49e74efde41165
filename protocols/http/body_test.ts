import assert from "node:assert/strict";
import { readBody, readText } from "./body.ts";

const MAX = 1000;

async function packed(text: string | Uint8Array, format: CompressionFormat): Promise<Uint8Array> {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream(format));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const post = (body: BodyInit, encoding?: string) =>
  new Request("http://sluice.test/x", {
    method: "POST",
    body,
    headers: encoding ? { "content-encoding": encoding } : {},
  });

Deno.test("a gzip body is read unpacked, whatever the case of its Content-Encoding", async () => {
  const reading = { temperature: "21.5", pressure: "1.2", coordinates: "45.50:-73.56" };
  for (const header of ["gzip", "X-GZIP", "x-gzip"]) {
    const body = await packed(JSON.stringify(reading), "gzip");
    assert.deepEqual(await readBody(post(body as BodyInit, header), MAX), reading, header);
  }
  assert.equal(await readText(post("plain", "identity"), MAX), "plain");
});

Deno.test("a compressed body is held to the size limit as it unpacks, not as sent", async () => {
  const bomb = await packed(new Uint8Array(10 * 1024 * 1024).fill(32), "gzip"); // 10 MiB of spaces
  assert.ok(bomb.byteLength < 20_000, `${bomb.byteLength} bytes sent`);
  await assert.rejects(
    readText(post(bomb as BodyInit, "gzip"), MAX),
    /^PayloadTooLargeError: Body is more than 1000 bytes/,
  );
});

Deno.test("a body that is not the data its Content-Encoding names, or an encoding Sluice cannot unpack, is a 400 saying so", async () => {
  await assert.rejects(
    readText(post('{"a":1}', "gzip"), MAX),
    /^ValidationError: Body is not valid gzip data \(Content-Encoding: gzip\)/,
  );
  const cut = (await packed("x".repeat(500), "gzip")).slice(0, 12);
  await assert.rejects(readText(post(cut as BodyInit, "gzip"), MAX), /Body is not valid gzip data/);
  for (const encoding of ["br", "deflate"]) {
    await assert.rejects(
      readText(post("{}", encoding), MAX),
      new RegExp(
        `^ValidationError: Content-Encoding "${encoding}" is not supported: send the body uncompressed, or gzip$`,
      ),
    );
  }
  // (Deflate has no trailer: a body cut short would be read as the part that came, two bytes as no body at all.)
  const cutDeflate = (await packed(JSON.stringify({ n: 123456 }), "deflate")).slice(0, 2);
  await assert.rejects(readText(post(cutDeflate as BodyInit, "deflate"), MAX), /not supported/);
});
