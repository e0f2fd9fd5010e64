// chat-service's gRPC-Web endpoint (tonic-web) driven by a client nobody on
// the team wrote: Connect's gRPC-Web transport for Node, over HTTP/1.1, with
// messages built at run time from the project's own descriptors. It proves
// the framing, the trailers (statuses and their codes) and server streaming
// through gRPC-Web, not just that the layer is installed.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";

import { Stack } from "../lib/stack.mjs";

const HANG_MS = 20_000;

describe("gRPC-Web (Connect's transport, HTTP/1.1)", () => {
  let stack;
  let chat;
  let owner;
  let viewer;
  let streamId;

  before(async () => {
    stack = await Stack.start();
    const transport = createGrpcWebTransport({
      baseUrl: `http://${stack.grpcAddr}`,
      httpVersion: "1.1",
    });
    chat = createClient(stack.registry.getService("allmine.chat.v1.ChatService"), transport);
    owner = await stack.user({ username: "owner", name: "Stream", surname: "Owner" });
    viewer = await stack.user({ username: "viewer", name: "Vera", surname: "Viewer" });
    streamId = await stack.stream(owner);
  });

  after(async () => {
    await stack?.stop();
  });

  const as = (user, signal) => ({
    headers: { authorization: `Bearer ${user.token}` },
    signal,
    timeoutMs: HANG_MS,
  });

  /** Subscribes and collects `count` events (then cancels the call). */
  function collect(request, user, count) {
    const abort = new AbortController();
    const events = [];
    let opened;
    const started = new Promise((resolve) => (opened = resolve));
    const done = (async () => {
      const stream = chat.subscribeMessages(request, {
        headers: { authorization: `Bearer ${user.token}` },
        signal: abort.signal,
        onHeader: () => opened(),
      });
      try {
        for await (const event of stream) {
          events.push(event);
          if (events.length >= count) break;
        }
      } finally {
        abort.abort();
      }
      return events;
    })();
    const guard = setTimeout(() => abort.abort(), HANG_MS);
    return {
      started,
      events: done.finally(() => clearTimeout(guard)),
    };
  }

  test("a message sent over gRPC-Web arrives on a gRPC-Web subscription", async () => {
    const live = collect({ streamId }, viewer, 1);
    await live.started;
    const sent = await chat.sendMessage({ streamId, content: "Merhaba gRPC-Web" }, as(viewer));
    assert.equal(sent.content, "Merhaba gRPC-Web");
    assert.equal(sent.sender.id, viewer.id);
    assert.equal(sent.sender.username, "viewer");
    assert.match(sent.id, /^[0-9a-f]{24}$/);

    const [event] = await live.events;
    assert.equal(event.event.case, "message");
    assert.equal(event.event.value.id, sent.id);
    assert.equal(event.event.value.content, "Merhaba gRPC-Web");
    assert.ok(event.cursor.length > 0, "every event carries its resume cursor");
  });

  test("a subscription resumes after a cursor with what came next, nothing before", async () => {
    const first = await chat.sendMessage({ streamId, content: "first" }, as(viewer));
    const second = await chat.sendMessage({ streamId, content: "second" }, as(owner));
    const resumed = collect({ streamId, after: first.cursor }, viewer, 1);
    const [event] = await resumed.events;
    assert.equal(event.event.case, "message");
    assert.equal(event.event.value.id, second.id);
  });

  test("a retried send with the same idempotency key returns the original message", async () => {
    const request = { streamId, content: "only once", idempotencyKey: `key-${Date.now()}` };
    const original = await chat.sendMessage(request, as(viewer));
    const replay = await chat.sendMessage(request, as(viewer));
    assert.equal(replay.id, original.id);
  });

  test("refusals arrive as gRPC statuses in the gRPC-Web trailers", async () => {
    await assert.rejects(
      chat.sendMessage({ streamId, content: "no token" }, { timeoutMs: HANG_MS }),
      (error) => error instanceof ConnectError && error.code === Code.Unauthenticated,
    );
    await assert.rejects(
      chat.sendMessage({ streamId, content: "   " }, as(viewer)),
      (error) => error instanceof ConnectError && error.code === Code.InvalidArgument,
    );

    const slow = await stack.stream(owner);
    await stack.slowMode(slow, 60);
    await chat.sendMessage({ streamId: slow, content: "one" }, as(viewer));
    await assert.rejects(
      chat.sendMessage({ streamId: slow, content: "two" }, as(viewer)),
      (error) =>
        error instanceof ConnectError &&
        error.code === Code.ResourceExhausted &&
        /slow mode/.test(error.rawMessage),
    );
  });

  test("a subscription to an unknown stream is refused with NOT_FOUND", async () => {
    const stream = chat.subscribeMessages({ streamId: "0123456789abcdef01234567" }, as(viewer));
    await assert.rejects(
      (async () => {
        for await (const _ of stream) {
          // no event is expected
        }
      })(),
      (error) => error instanceof ConnectError && error.code === Code.NotFound,
    );
  });
});
