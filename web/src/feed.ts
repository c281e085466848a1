// The live feed: messages as they change state, over server-sent events (/v1/feed). One row
// per message, showing its latest state; the most recently changed at the top.
import type { FeedEvent } from "./api";
import { badge, el, short, time, units } from "./dom";

const MAX_ROWS = 100;

export class Feed {
  private rows = new Map<string, HTMLElement>();
  private events = 0;
  private source: EventSource | null = null;

  constructor(
    private list: HTMLElement,
    private light: HTMLElement,
    private counter: HTMLElement,
    private open: (messageId: string) => void,
    private changed: (event: FeedEvent) => void,
  ) {}

  start(): void {
    // EventSource reconnects by itself and resumes after the last id it saw.
    const source = new EventSource("/v1/feed?backlog=30");
    source.addEventListener("open", () => this.live(true));
    source.addEventListener("error", () => this.live(false));
    source.addEventListener("state", (message) => {
      this.show(JSON.parse((message as MessageEvent<string>).data) as FeedEvent);
    });
    this.source = source;
  }

  stop(): void {
    this.source?.close();
  }

  private live(on: boolean): void {
    this.light.dataset.live = String(on);
    this.light.textContent = on ? "live" : "reconnecting";
  }

  private show(event: FeedEvent): void {
    this.events += 1;
    this.counter.textContent = `${this.events} events`;
    this.rows.get(event.message_id)?.remove();
    const row = this.row(event);
    this.rows.set(event.message_id, row);
    this.list.prepend(row);
    while (this.list.children.length > MAX_ROWS) {
      const last = this.list.lastElementChild as HTMLElement;
      this.rows.delete(last.dataset.messageId ?? "");
      last.remove();
    }
    this.changed(event);
  }

  private row(e: FeedEvent): HTMLElement {
    const what = e.asset ? `${units(e.amount)} ${e.asset}` : e.amount ? `${units(e.amount)} (unknown asset)` : "message";
    const row = el(
      "li",
      { class: `feed-row state-${e.state}`, "data-message-id": e.message_id, "data-state": e.state, title: e.detail ?? "" },
      el("time", {}, time(e.at)),
      badge(e.state),
      el("code", { class: "id" }, short(e.message_id)),
      el("span", { class: "route" }, `${e.src_chain ?? "?"} → ${e.dst_chain ?? "?"}`),
      el("span", { class: "what", title: what }, what),
    );
    row.addEventListener("click", () => this.open(e.message_id));
    return row;
  }
}
