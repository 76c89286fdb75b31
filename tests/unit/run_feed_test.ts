import assert from "node:assert/strict";
import { RunFeed } from "../../lib/core/run_feed.ts";
import { Attachment } from "../../lib/core/attachment.ts";
import { Execution } from "../../lib/core/execution.ts";
import { Metrics } from "../../lib/ops/metrics.ts";
import type { Sink } from "../../lib/core/sink.ts";
import type { ExecutionEvent } from "../../lib/types.ts";
import { fakeClock } from "../_clock.ts";
import { execLimits, execSpec } from "../_exec.ts";

const event: ExecutionEvent = { type: "paused", executionId: "e", pid: 1, pgid: 1 };

/** A sink whose readiness the test opens and whose gone-ness it sets. */
function gate() {
  let open!: () => void;
  let ready = new Promise<void>((r) => open = r);
  const seen: ExecutionEvent[] = [];
  const state = { gone: false };
  const sink: Sink = {
    emit: (e) => void seen.push(e),
    ready: () => ready,
    gone: () => state.gone,
  };
  return {
    sink,
    seen,
    state,
    open: () => {
      open();
      ready = Promise.resolve();
    },
  };
}

const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(() => done = true);
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
};

Deno.test("RunFeed paces by every pacing consumer still there, and by no observer", async () => {
  const feed = new RunFeed({ detached: false, detachTimeoutMs: 1000, abandoned: () => {} });
  const a = gate();
  const b = gate();
  const observer = gate();
  feed.subscribe(a.sink);
  feed.subscribe(b.sink);
  feed.subscribe(observer.sink, { paces: false, attaches: false });
  const ready = feed.ready();
  a.open();
  assert.equal(await settled(ready), false, "b still holds the child back");
  b.open();
  assert.equal(await settled(ready), true);
  feed.emit(event);
  assert.deepEqual([a.seen.length, b.seen.length, observer.seen.length], [1, 1, 1]);
  assert.equal(feed.attached, 2);
});

Deno.test("RunFeed.gone: a run followed by nobody is gone unless it is detached", () => {
  const plain = new RunFeed({ detached: false, detachTimeoutMs: 1000, abandoned: () => {} });
  const a = gate();
  plain.subscribe(a.sink);
  assert.equal(plain.gone(), false);
  a.state.gone = true;
  assert.equal(plain.gone(), true, "its only consumer left");
  const detached = new RunFeed({ detached: true, detachTimeoutMs: 1000, abandoned: () => {} });
  assert.equal(detached.gone(), false, "read on with nobody there");
  detached.close();
});

Deno.test("RunFeed: one consumer that throws costs the others nothing", () => {
  const feed = new RunFeed({ detached: false, detachTimeoutMs: 1000, abandoned: () => {} });
  const b = gate();
  const errors: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    errors.push(e.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    feed.subscribe({
      emit: () => {
        throw new Error("boom");
      },
      ready: () => Promise.resolve(),
    });
    feed.subscribe(b.sink);
    feed.emit(event);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
  assert.equal(b.seen.length, 1);
  assert.equal(errors.length, 1);
});

Deno.test("RunFeed: a detached run is abandoned detach-timeout after its last follower left, unless touched or attached", async () => {
  using clock = fakeClock();
  let abandoned = 0;
  const feed = new RunFeed({ detached: true, detachTimeoutMs: 1000, abandoned: () => abandoned++ });
  const a = gate();
  const leave = feed.subscribe(a.sink);
  await clock.tick(5000);
  assert.equal(abandoned, 0, "attached: no clock");
  leave();
  await clock.tick(900);
  feed.touch();
  await clock.tick(900);
  assert.equal(abandoned, 0, "a read starts the clock again");
  // An observer (an MCP call waiting) does not count as attached.
  const stop = feed.subscribe(gate().sink, { attaches: false });
  await clock.tick(200);
  assert.equal(abandoned, 1);
  stop();
  const b = gate();
  feed.subscribe(b.sink);
  feed.unsubscribe(b.sink);
  feed.close();
  await clock.tick(5000);
  assert.equal(abandoned, 1, "an ended run has no clock");
});

function spawn(argv: string[], retention = 1 << 20) {
  const exec = Execution.spawn({
    id: crypto.randomUUID(),
    sessionId: null,
    detached: true,
    spec: execSpec(argv),
    sink: { emit: () => {}, ready: () => Promise.resolve() },
    limits: execLimits({ outputRetention: retention }),
    metrics: new Metrics(),
  });
  exec.run();
  return exec;
}

function collect(exec: Execution, from?: number) {
  const events: ExecutionEvent[] = [];
  let out = "";
  const done = Promise.withResolvers<void>();
  const attachment = new Attachment(exec, {
    emit: (e) => {
      events.push(e);
      // Read at once: a live chunk's bytes are reused after its event.
      if (e.type === "output") out += e.chunk.data;
      if (e.type === "completed") done.resolve();
    },
    ready: () => Promise.resolve(),
  }, from);
  void attachment.start();
  return { attachment, events, done: done.promise, text: () => out };
}

Deno.test("Attachment from a mid-chunk offset, or past the end, starts exactly there", async () => {
  const exec = spawn(["sh", "-c", "printf 'hello world\\n'"]);
  await exec.done;
  const mid = collect(exec, 6);
  await mid.done;
  assert.equal(mid.text(), "world\n");
  const first = mid.events.find((e) => e.type === "output");
  assert.equal(first?.type === "output" && first.chunk.seq, 6);
  assert.equal(mid.attachment.closed, true, "an attachment lets go once the end was sent");
  const past = collect(exec, 1000);
  await past.done;
  assert.deepEqual(past.events.map((e) => e.type), ["completed"]);
});

Deno.test("Attachments during a run join replay and live output with nothing lost or repeated", async () => {
  const exec = spawn([
    "sh",
    "-c",
    "for i in $(seq 1 300); do echo $i; done; sleep 0.1; seq 301 600",
  ]);
  const early = collect(exec, 0);
  // Attach again at every output event of the first: each one joins mid-run.
  const late: ReturnType<typeof collect>[] = [];
  const unwatch = exec.feed.subscribe({
    emit: (e) => {
      if (e.type === "output" && late.length < 20) late.push(collect(exec, 0));
    },
    ready: () => Promise.resolve(),
  }, { paces: false, attaches: false });
  await exec.done;
  unwatch();
  await early.done;
  await Promise.all(late.map((l) => l.done));
  let expected = "";
  for (let i = 1; i <= 600; i++) expected += `${i}\n`;
  assert.equal(early.text(), expected);
  assert.ok(late.length > 0);
  for (const l of late) {
    assert.equal(l.text(), expected);
    assert.equal(l.events.filter((e) => e.type === "completed").length, 1);
    assert.equal(l.events.at(-1)!.type, "completed");
  }
});

Deno.test("Attachment to a range no longer retained sends a gap first", async () => {
  const exec = spawn(["seq", "1", "2000"], 1000);
  await exec.done;
  const a = collect(exec, 0);
  await a.done;
  const gap = a.events[0]!;
  assert.equal(gap.type, "gap");
  assert.equal(gap.type === "gap" && gap.from, 0);
  assert.equal(gap.type === "gap" && gap.to, exec.output.first);
  let expected = "";
  for (let i = 1; i <= 2000; i++) expected += `${i}\n`;
  assert.equal(a.text(), expected.slice(exec.output.first));
});

Deno.test("Attachment inside a character starts after it, but never skips stray bytes or the other stream", async () => {
  // stdout "a\377\376b€", then stderr "\360\237" (an incomplete emoji), then stdout "\230\200d".
  const exec = spawn([
    "sh",
    "-c",
    "printf 'a\\377\\376b\\342\\202\\254'; sleep 0.05; printf '\\360\\237' >&2; sleep 0.05; printf '\\230\\200d'",
  ]);
  await exec.done;
  // Inside "€" (bytes 4-6): from its end.
  assert.equal(collect(exec, 5).attachment.from, 7);
  // Inside the stray stderr bytes (7-8): from where asked; so for stdout's stray bytes (9-10).
  assert.equal(collect(exec, 8).attachment.from, 8);
  const tail = collect(exec, 9);
  assert.equal(tail.attachment.from, 9);
  await tail.done;
  assert.equal(tail.text(), "\ufffd\ufffdd");
});

Deno.test("RunFeed holds: the latest holder paces a detached run; one that left waits for its return", async () => {
  const feed = new RunFeed({ detached: true, detachTimeoutMs: 60_000, abandoned: () => {} });
  const a = gate();
  const b = gate();
  const viewer = gate();
  feed.subscribe(viewer.sink, { paces: true });
  assert.equal(await settled(feed.ready()), true, "a follower that does not hold paces nothing");
  feed.subscribe(a.sink, { holds: true });
  assert.equal(await settled(feed.ready()), false, "held by a");
  feed.subscribe(b.sink, { holds: true });
  b.open();
  assert.equal(await settled(feed.ready()), true, "b took over: a's closed gate holds nothing");
  // a, taken over, drops its connection: no vacancy for it.
  feed.leave(a.sink);
  assert.equal(await settled(feed.ready()), true);
  // b, the holder, drops its connection: the run waits for it.
  feed.leave(b.sink);
  const waiting = feed.ready();
  assert.equal(await settled(waiting), false, "vacant");
  const back = gate();
  back.open();
  feed.subscribe(back.sink, { holds: true });
  assert.equal(await settled(waiting), true, "the holder is back");
  feed.leave(back.sink);
  const vacant = feed.ready();
  assert.equal(await settled(vacant), false);
  feed.releaseHolds();
  assert.equal(await settled(vacant), true, "ending the run releases the vacancy");
  feed.subscribe(gate().sink, { holds: true });
  assert.equal(await settled(feed.ready()), true, "and no hold is taken after that");
  feed.close();
});
