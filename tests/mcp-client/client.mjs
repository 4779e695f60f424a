// Drives aifn's /mcp with the official TypeScript SDK client: lists the
// tools and calls one. Usage: node client.mjs URL KEY TOOL INPUT_JSON
// Prints one JSON document: {protocolVersion, tools, result}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, key, tool, input] = process.argv.slice(2);
if (!url || !key || !tool || !input) {
  console.error("usage: node client.mjs URL KEY TOOL INPUT_JSON");
  process.exit(2);
}

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${key}` } },
});
const client = new Client({ name: "aifn-ts-test", version: "1.0.0" });
await client.connect(transport);
const { tools } = await client.listTools();
const result = await client.callTool({
  name: tool,
  arguments: JSON.parse(input),
  _meta: { "aifn/user_id": "ts-user" },
});
console.log(JSON.stringify({
  protocolVersion: transport.protocolVersion ?? null,
  tools,
  result,
}));
await client.close();
