// Search results and one message in full: its timeline, its transactions on both chains, its
// attestations (and refusals), and its transfer.
import type { Message, SearchResult } from "./api";
import { badge, el, short, time, units } from "./dom";

function table(headers: string[], rows: (Node | string)[][], cls: string): HTMLElement {
  return el(
    "table",
    { class: cls },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))))),
  );
}

function field(name: string, value: Node | string): HTMLElement {
  return el("div", { class: "field" }, el("span", { class: "name" }, name), el("span", { class: "value" }, value));
}

export function renderMessage(m: Message): HTMLElement {
  const transfer = m.transfer
    ? el(
        "section",
        { class: "transfer" },
        el("h3", {}, "Transfer"),
        field("asset", m.transfer.asset ?? "unknown"),
        field("amount", `${units(m.transfer.amount)} (base units)`),
        field("from", el("code", {}, m.transfer.sender)),
        field("to", el("code", {}, m.transfer.recipient)),
      )
    : null;
  return el(
    "article",
    { class: "message", "data-message-id": m.id, "data-state": m.state },
    el("h3", {}, badge(m.state), " ", el("code", { class: "full-id" }, m.id)),
    m.paused ? el("p", { class: "paused" }, `waiting: ${m.paused}`) : null,
    m.last_error ? el("p", { class: "error" }, `last error (attempt ${m.attempts}): ${m.last_error}`) : null,
    field("route", `${m.src_chain ?? m.src_chain_id} → ${m.dst_chain ?? m.dst_chain_id}`),
    field("sender", el("code", {}, m.sender)),
    field("recipient", el("code", {}, m.recipient)),
    field("gas limit", String(m.gas_limit)),
    transfer,
    el("h3", {}, "Timeline"),
    table(
      ["state", "at", "detail"],
      m.timeline.map((s) => [badge(s.state), time(s.at), s.detail ?? ""]),
      "timeline",
    ),
    el("h3", {}, "Transactions"),
    table(
      ["", "chain", "block", "transaction"],
      [
        ["source", m.src_chain ?? String(m.src_chain_id), String(m.src_block_number), el("code", { class: "src-tx" }, m.src_tx_hash)],
        [
          "destination",
          m.dst_chain ?? String(m.dst_chain_id),
          m.dst_block_number === null ? "-" : String(m.dst_block_number),
          el("code", { class: "dst-tx" }, m.dst_tx_hash ?? "not yet"),
        ],
      ],
      "transactions",
    ),
    el("h3", {}, `Attestations (${m.attestations.length})`),
    table(
      ["validator", "epoch", "at"],
      m.attestations.map((a) => [el("code", {}, a.validator), String(a.epoch), time(a.created_at)]),
      "attestations",
    ),
    m.refusals.length
      ? table(
          ["validator", "declined because", "at"],
          m.refusals.map((r) => [el("code", {}, short(r.validator)), r.reason, time(r.at)]),
          "refusals",
        )
      : null,
  );
}

export function renderResults(found: SearchResult, open: (id: string) => void): HTMLElement {
  if (found.messages.length === 0) {
    return el("p", { class: "nothing" }, `Nothing found for ${found.query}.`);
  }
  // A message id or a transaction names one message; an address may name many: a list.
  if (found.messages.length === 1 && found.kind !== "address") return renderMessage(found.messages[0]);
  const items = found.messages.map((m) => {
    const row = el(
      "li",
      { class: "result", "data-message-id": m.id },
      badge(m.state),
      el("code", {}, short(m.id)),
      ` ${m.src_chain ?? "?"} → ${m.dst_chain ?? "?"}`,
      m.transfer ? ` ${units(m.transfer.amount)} ${m.transfer.asset ?? ""}` : "",
    );
    row.addEventListener("click", () => open(m.id));
    return row;
  });
  return el("div", {}, el("p", {}, `${found.messages.length} messages for this ${found.kind}:`), el("ul", { class: "results" }, ...items));
}
