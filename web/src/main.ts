// The dashboard: the islands map, the live feed, search, and each asset's supply.
import "./style.css";
import { get, type Asset, type FeedEvent, type Message, type SearchResult, type Status } from "./api";
import { renderAsset } from "./assets";
import { renderMessage, renderResults } from "./detail";
import { el } from "./dom";
import { Feed } from "./feed";
import { drawBacklog, drawMap } from "./map";

const STATUS_EVERY_MS = 3000;
const ASSETS_EVERY_MS = 10000;

function byId<T extends Element>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as unknown as T;
}

const map = byId<SVGSVGElement>("map");
const backlog = byId<HTMLElement>("backlog");
const detailPanel = byId<HTMLElement>("detail-panel");
const detail = byId<HTMLElement>("detail");
const assetsBox = byId<HTMLElement>("assets");
const search = byId<HTMLInputElement>("search");
let shown: string | null = null; // the message open in the detail panel

async function refreshStatus(): Promise<void> {
  try {
    const status = await get<Status>("/v1/status");
    drawMap(map, status);
    drawBacklog(backlog, status);
  } catch (error) {
    backlog.replaceChildren(el("span", { class: "error" }, `status: ${(error as Error).message}`));
  }
}

async function refreshAssets(): Promise<void> {
  try {
    const list = await get<{ symbol: string }[]>("/v1/assets");
    const assets = await Promise.all(list.map((a) => get<Asset>(`/v1/assets/${encodeURIComponent(a.symbol)}`)));
    assetsBox.replaceChildren(...assets.map(renderAsset));
  } catch (error) {
    assetsBox.replaceChildren(el("p", { class: "error" }, `assets: ${(error as Error).message}`));
  }
}

function showPanel(content: HTMLElement): void {
  detail.replaceChildren(content);
  detailPanel.hidden = false;
}

async function openMessage(id: string): Promise<void> {
  try {
    const message = await get<Message>(`/v1/messages/${id}`);
    shown = message.id;
    showPanel(renderMessage(message));
  } catch (error) {
    showPanel(el("p", { class: "error" }, (error as Error).message));
  }
}

async function runSearch(query: string): Promise<void> {
  const q = query.trim();
  if (!q) return;
  try {
    const found = await get<SearchResult>(`/v1/search?q=${encodeURIComponent(q)}`);
    shown = found.messages.length === 1 && found.kind !== "address" ? found.messages[0].id : null;
    showPanel(renderResults(found, (id) => void openMessage(id)));
  } catch (error) {
    shown = null;
    showPanel(el("p", { class: "error" }, (error as Error).message));
  }
}

function onEvent(event: FeedEvent): void {
  if (event.message_id === shown) void openMessage(event.message_id);
}

byId<HTMLFormElement>("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  void runSearch(search.value);
});
byId<HTMLButtonElement>("detail-close").addEventListener("click", () => {
  shown = null;
  detailPanel.hidden = true;
});

const feed = new Feed(byId("feed"), byId("feed-status"), byId("feed-count"), (id) => void openMessage(id), onEvent);
feed.start();
void refreshStatus();
void refreshAssets();
setInterval(() => void refreshStatus(), STATUS_EVERY_MS);
setInterval(() => void refreshAssets(), ASSETS_EVERY_MS);
