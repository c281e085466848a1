// Each asset's supply: locked at home, wrapped on each chain, in flight, balanced or not.
import type { Asset } from "./api";
import { el, units } from "./dom";

export function renderAsset(a: Asset): HTMLElement {
  const s = a.supply;
  const verdict =
    !s || s.balanced === null
      ? el("span", { class: "verdict unknown" }, "not read")
      : s.balanced
        ? el("span", { class: "verdict balanced" }, "balanced")
        : el("span", { class: "verdict unbalanced" }, `unbalanced (${units(s.surplus)})`);
  const rows: [string, string][] = s
    ? [
        [`locked at home (${a.home_chain})`, units(s.locked_at_home)],
        ...Object.entries(s.wrapped).map(([chain, v]) => [`wrapped on ${chain}`, units(v)] as [string, string]),
        ["in flight", units(s.in_flight)],
      ]
    : [];
  return el(
    "div",
    { class: "asset", "data-asset": a.symbol, "data-balanced": String(s?.balanced ?? "unknown") },
    el("h3", {}, a.symbol, " ", verdict, a.status !== "active" ? el("span", { class: "verdict unbalanced" }, a.status) : null),
    el(
      "table",
      { class: "supply" },
      el("tbody", {}, ...rows.map(([name, value]) => el("tr", {}, el("th", {}, name), el("td", {}, value)))),
    ),
    s && Object.keys(s.errors).length ? el("p", { class: "error" }, Object.values(s.errors).join("; ")) : null,
    el("p", { class: "note" }, "base units"),
  );
}
