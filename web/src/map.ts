// The islands map: each chain a node (head, finality lag, status), each route an edge
// (deliveries in the last window, pause state).
import type { ChainSummary, RouteSummary, Status } from "./api";
import { el, svg } from "./dom";

const WIDTH = 640;
const HEIGHT = 420;
const RADIUS = 46;

type Point = { x: number; y: number };

function positions(chains: ChainSummary[]): Map<string, Point> {
  const found = new Map<string, Point>();
  const ring = Math.min(WIDTH, HEIGHT) / 2 - RADIUS - 24;
  chains.forEach((chain, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, chains.length);
    found.set(chain.name, {
      x: WIDTH / 2 + (chains.length > 1 ? ring * Math.cos(angle) : 0),
      y: HEIGHT / 2 + (chains.length > 1 ? ring * Math.sin(angle) : 0),
    });
  });
  return found;
}

function chainClass(chain: ChainSummary): string {
  if (!chain.reachable) return "chain down";
  return chain.status === "active" ? "chain up" : `chain ${chain.status}`;
}

function edge(route: RouteSummary, from: Point, to: Point, windowMinutes: number): SVGElement {
  // Both directions of a pair bend to opposite sides, so they never overlap.
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const length = Math.hypot(dx, dy) || 1;
  const ux = dx / length;
  const uy = dy / length;
  const start = { x: from.x + ux * RADIUS, y: from.y + uy * RADIUS };
  const end = { x: to.x - ux * (RADIUS + 6), y: to.y - uy * (RADIUS + 6) };
  const bend = 26;
  const control = { x: (start.x + end.x) / 2 - uy * bend, y: (start.y + end.y) / 2 + ux * bend };
  const paused = route.status !== "active";
  const width = 1.5 + Math.min(6, route.delivered_recently);
  const label = `${route.delivered_recently}/${windowMinutes}m`;
  return svg(
    "g",
    {
      class: paused ? "route paused" : "route",
      "data-route": `${route.src}->${route.dst}`,
      "data-status": route.status,
    },
    svg("title", {}, `${route.src} → ${route.dst}: ${route.status}${route.status_reason ? ` (${route.status_reason})` : ""}; ${route.delivered_recently} delivered in ${windowMinutes} min, ${route.in_flight} in flight`),
    svg("path", {
      d: `M ${start.x} ${start.y} Q ${control.x} ${control.y} ${end.x} ${end.y}`,
      "stroke-width": width,
      "marker-end": paused ? "url(#arrow-paused)" : "url(#arrow)",
    }),
    svg("text", { x: control.x, y: control.y, class: "route-label" }, paused ? "paused" : label),
  );
}

function node(chain: ChainSummary, at: Point): SVGElement {
  const lag = chain.finality_lag === null ? "?" : String(chain.finality_lag);
  const state = chain.reachable ? chain.status : "unreachable";
  return svg(
    "g",
    { class: chainClass(chain), "data-chain": chain.name, "data-status": state },
    svg("title", {}, `${chain.name} (chain id ${chain.chain_id}): ${state}${chain.status_reason ? ` — ${chain.status_reason}` : ""}`),
    svg("circle", { cx: at.x, cy: at.y, r: RADIUS }),
    svg("text", { x: at.x, y: at.y - 14, class: "chain-name" }, chain.name),
    svg("text", { x: at.x, y: at.y + 4, class: "chain-line" }, `head ${chain.head ?? "?"}`),
    svg("text", { x: at.x, y: at.y + 19, class: "chain-line" }, `lag ${lag} · ${state}`),
  );
}

export function drawMap(target: SVGSVGElement, status: Status): void {
  const at = positions(status.chains);
  const windowMinutes = Math.round(status.throughput_window_seconds / 60);
  const defs = svg(
    "defs",
    {},
    ...["arrow", "arrow-paused"].map((id) =>
      svg(
        "marker",
        { id, viewBox: "0 0 10 10", refX: 8, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" },
        svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: id }),
      ),
    ),
  );
  const edges = status.routes
    .filter((r) => at.has(r.src) && at.has(r.dst))
    .map((r) => edge(r, at.get(r.src)!, at.get(r.dst)!, windowMinutes));
  const nodes = status.chains.map((c) => node(c, at.get(c.name)!));
  target.replaceChildren(defs, ...edges, ...nodes);
}

export function drawBacklog(target: HTMLElement, status: Status): void {
  const items = Object.entries(status.backlog).map(([state, count]) =>
    el("span", { class: `backlog-item state-${state}`, "data-state": state }, `${state} `, el("b", {}, count)),
  );
  if (status.open_alerts) {
    items.push(el("span", { class: "backlog-item alert" }, `${status.open_alerts} open alert(s)`));
  }
  target.replaceChildren(...items);
}
