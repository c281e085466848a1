// Small helpers to build elements without innerHTML (nothing from the API is parsed as HTML).

type Child = Node | string | number | null | undefined | false;

export function el(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  append(node, children);
  return node;
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: Child[]): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  append(node, children);
  return node;
}

function append(node: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "number" ? String(child) : child);
  }
}

export function short(hex: string | null | undefined, keep = 10): string {
  if (!hex) return "-";
  return hex.length > keep + 6 ? `${hex.slice(0, keep)}…${hex.slice(-4)}` : hex;
}

export function time(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

export function units(value: string | null | undefined): string {
  // Base units are decimal strings wider than a JS number: group digits, never round.
  if (value === null || value === undefined) return "?";
  const negative = value.startsWith("-");
  const digits = negative ? value.slice(1) : value;
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return negative ? `-${grouped}` : grouped;
}

export function badge(state: string): HTMLElement {
  return el("span", { class: `badge state-${state}` }, state);
}
