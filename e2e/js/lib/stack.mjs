// The real binaries for one test file: chat-service on its embedded store
// (a fresh temporary directory) and http-edge in front of it, each on an
// ephemeral port read back from its start-up log line; tokens minted with the
// project's token builder; admin calls (register a stream, slow mode,
// profiles) through chat-service's native gRPC with Connect's Node client.
//
// Binaries come from ALLMINE_BIN_DIR, else target/debug of this repository
// (scripts/test.sh builds them first).

import { spawn, execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { createFileRegistry } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

const run = promisify(execFile);

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const BIN_DIR = process.env.ALLMINE_BIN_DIR || path.join(REPO, "target", "debug");
const START_TIMEOUT_MS = 60_000;
// Every process's log, whole, for a failed run to show (scripts/web_tests.sh
// prints their tails).
export const LOG_DIR = path.join(REPO, "target", "web-tests");

/** A random 24-hex-digit ObjectId, as stream and user ids are. */
export function objectId() {
  return randomBytes(12).toString("hex");
}

/**
 * The descriptors of the project's .proto files, compiled at test time by
 * buf (from the lockfile's @bufbuild/buf), and a registry over them: the
 * clients are built from these at run time, no generated code.
 */
export async function protoRegistry() {
  const dir = await mkdtemp(path.join(tmpdir(), "allmine-proto-"));
  const image = path.join(dir, "chat.binpb");
  try {
    const buf = path.join(REPO, "e2e", "js", "node_modules", ".bin", "buf");
    await run(buf, ["build", path.join(REPO, "proto", "proto"), "--as-file-descriptor-set", "-o", image]);
    const set = fromBinary(FileDescriptorSetSchema, await readFile(image));
    return createFileRegistry(set);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A started process and the address its log line named. */
function startProcess(name, env, addressPattern) {
  const child = spawn(path.join(BIN_DIR, name), [], {
    env: { ...process.env, RUST_LOG: "info", NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  mkdirSync(LOG_DIR, { recursive: true });
  const file = createWriteStream(path.join(LOG_DIR, `${name}-${child.pid}.log`));
  child.stdout.pipe(file);
  child.stderr.pipe(file);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not start within ${START_TIMEOUT_MS} ms:\n${log.join("")}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk) => {
      // Strip colour codes: the address is matched on plain text.
      const text = chunk.toString().replace(/\x1b\[[0-9;]*m/g, "");
      log.push(text);
      if (log.length > 500) log.shift();
      const match = text.match(addressPattern);
      if (match) {
        clearTimeout(timer);
        resolve({ child, addr: match[1], log });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited during start-up (${code ?? signal}):\n${log.join("")}`));
    });
  });
}

// `addr=127.0.0.1:1234` in text logs, `"addr":"127.0.0.1:1234"` in JSON ones.
const SERVICE_LISTENING = /chat-service listening.*?addr\W+([\d.]+:\d+)|addr\W+([\d.]+:\d+).*chat-service listening/;
const EDGE_BOUND = /local_addr\W+([\d.]+:\d+)/;

async function stopProcess(started) {
  if (!started || started.child.exitCode !== null) return;
  const exited = new Promise((resolve) => started.child.once("exit", resolve));
  started.child.kill("SIGTERM");
  const timer = setTimeout(() => started.child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

export class Stack {
  /**
   * @param {object} [options]
   * @param {Record<string,string>} [options.edgeEnv] extra EDGE_* settings
   * @param {Record<string,string>} [options.serviceEnv] extra CHAT_* settings
   */
  static async start(options = {}) {
    const stack = new Stack();
    stack.secret = randomBytes(32).toString("hex");
    stack.dataDir = await mkdtemp(path.join(tmpdir(), "allmine-web-e2e-"));
    stack.serviceEnv = {
      CHAT_GRPC_ADDR: "127.0.0.1:0",
      CHAT_STORE: "embedded",
      CHAT_DATA_DIR: stack.dataDir,
      CHAT_JWT_SECRET: stack.secret,
      CHAT_SHUTDOWN_GRACE_SECS: "2",
      ...(options.serviceEnv || {}),
    };
    stack.edgeEnvExtra = options.edgeEnv || {};
    stack.service = await startProcess("chat-service", stack.serviceEnv, SERVICE_LISTENING);
    stack.grpcAddr = stack.service.addr;
    await stack.startEdge("127.0.0.1:0");
    stack.registry = await protoRegistry();
    stack.serviceToken = await stack.token({ username: "stream-service", roles: "service" });
    const transport = createGrpcTransport({ baseUrl: `http://${stack.grpcAddr}` });
    stack.admin = createClient(stack.registry.getService("allmine.chat.v1.ChatAdminService"), transport);
    // ChatService over native gRPC: for acting while the edge is down.
    stack.chat = createClient(stack.registry.getService("allmine.chat.v1.ChatService"), transport);
    return stack;
  }

  /** Starts the edge on `addr` (port 0: any free port). */
  async startEdge(addr) {
    this.edge = await startProcess(
      "http-edge",
      {
        EDGE_HTTP_ADDR: addr,
        EDGE_CHAT_SERVICE_URL: `http://${this.grpcAddr}`,
        ...this.edgeEnvExtra,
      },
      EDGE_BOUND,
    );
    this.edgeAddr = this.edge.addr;
    this.edgeUrl = `http://${this.edgeAddr}`;
  }

  /** Stops the edge only (chat-service keeps running). */
  async stopEdge() {
    await stopProcess(this.edge);
  }

  /** Restarts the edge on the port it had, as a redeployment would. */
  async restartEdge() {
    await this.stopEdge();
    await this.startEdge(this.edgeAddr);
  }

  async stop() {
    await stopProcess(this.edge);
    await stopProcess(this.service);
    if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  /**
   * An HS256 token from the project's own minting tool (`chatctl token`).
   * @param {{sub?: string, username?: string, name?: string, surname?: string, roles?: string}} claims
   */
  async token(claims = {}) {
    const args = ["token", "--secret", this.secret];
    for (const [name, value] of Object.entries(claims)) {
      if (value !== undefined) args.push(`--${name}`, String(value));
    }
    const { stdout } = await run(path.join(BIN_DIR, "chatctl"), args);
    return stdout.trim();
  }

  /** A user with a token (and, with `photo`, a stored profile photo). */
  async user({ username, name, surname, photo } = {}) {
    const sub = objectId();
    const token = await this.token({ sub, username, name, surname });
    if (photo) {
      await this.admin.upsertUserProfile(
        {
          userId: sub,
          username,
          name,
          surname,
          profilePhoto: { id: objectId(), url: photo, type: "image", variants: { 40: photo } },
        },
        this.asService(),
      );
    }
    return { id: sub, token, username, name, surname };
  }

  asService() {
    return { headers: { authorization: `Bearer ${this.serviceToken}` } };
  }

  /** Registers a new stream (its chat open) owned by `owner`; returns its id. */
  async stream(owner) {
    const streamId = objectId();
    await this.admin.registerStream({ streamId, ownerId: owner.id }, this.asService());
    return streamId;
  }

  async slowMode(streamId, seconds) {
    await this.admin.updateStreamSettings({ streamId, slowModeSeconds: seconds }, this.asService());
  }

  /** A REST call to the edge with `user`'s token; resolves to the Response. */
  rest(user, method, suffix, body) {
    const headers = { authorization: `Bearer ${user.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    return fetch(`${this.edgeUrl}${suffix}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }
}
