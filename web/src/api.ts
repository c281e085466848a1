// The hub's API as the dashboard reads it: the shapes of the answers it uses, and fetch.

export interface ChainSummary {
  name: string;
  chain_id: number;
  status: string;
  status_reason: string | null;
  reachable: boolean;
  head: number | null;
  finalized: number | null;
  finality_lag: number | null;
  cursor_block: number | null;
  cursor_lag: number | null;
}

export interface RouteSummary {
  id: number;
  src: string;
  dst: string;
  status: string;
  status_reason: string | null;
  delivered_recently: number;
  in_flight: number;
}

export interface Status {
  at: string;
  chains: ChainSummary[];
  routes: RouteSummary[];
  assets: { symbol: string; home_chain: string; status: string; chains: string[] }[];
  backlog: Record<string, number>;
  open_alerts: number;
  throughput_window_seconds: number;
}

export interface FeedEvent {
  event_id: number;
  message_id: string;
  state: string;
  at: string;
  detail: string | null;
  src_chain: string | null;
  dst_chain: string | null;
  src_tx_hash: string;
  dst_tx_hash: string | null;
  sender: string;
  recipient: string;
  asset: string | null;
  amount: string | null;
}

export interface Step {
  state: string;
  at: string;
  detail: string | null;
}

export interface Transfer {
  asset: string | null;
  amount: string;
  sender: string;
  recipient: string;
}

export interface Message {
  id: string;
  state: string;
  src_chain: string | null;
  dst_chain: string | null;
  src_chain_id: number;
  dst_chain_id: number;
  sender: string;
  recipient: string;
  gas_limit: number;
  src_tx_hash: string;
  src_block_number: number;
  dst_tx_hash: string | null;
  dst_block_number: number | null;
  attempts: number;
  last_error: string | null;
  paused: string | null;
  timeline: Step[];
  attestations: { validator: string; epoch: number; created_at: string }[];
  refusals: { validator: string; reason: string; at: string }[];
  transfer: Transfer | null;
}

export interface SearchResult {
  query: string;
  kind: string;
  messages: Message[];
}

export interface Asset {
  symbol: string;
  home_chain: string;
  status: string;
  status_reason: string | null;
  supply: {
    locked_at_home: string | null;
    wrapped: Record<string, string | null>;
    in_flight: string;
    balanced: boolean | null;
    surplus: string | null;
    errors: Record<string, string>;
  } | null;
}

export async function get<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    let reason = `${response.status}`;
    try {
      reason = (await response.json()).error.message;
    } catch {
      /* not the hub's error shape */
    }
    throw new Error(reason);
  }
  return (await response.json()) as T;
}
