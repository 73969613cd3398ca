// The shapes of the management API's bodies, as the console reads them.

export interface ProblemPlace {
  path: string;
  detail: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: ProblemPlace[];
}

export interface ServerSummary {
  name: string;
  description?: string | null;
  etag: string;
  from_api: boolean;
  default_version?: string;
  versions?: string[];
}

export interface StdioBackend {
  command: string;
  args?: string[];
}

export interface BackendConfig {
  http?: string;
  sse?: string;
  stdio?: StdioBackend;
  openapi?: { spec?: string; base_url?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface PolicyBinding {
  policy: string;
  config?: unknown;
  fail_open?: boolean;
  limits?: { memory_mb?: number; timeout_ms?: number };
  allow_hosts?: string[];
  secrets?: Record<string, unknown>;
  instances?: string;
  [k: string]: unknown;
}

export interface VersionConfig {
  name: string;
  description?: string | null;
  backend: BackendConfig;
  policies?: PolicyBinding[];
  retired?: boolean;
}

export interface ServerConfig {
  name: string;
  description?: string | null;
  backend?: BackendConfig;
  policies?: PolicyBinding[];
  versions?: VersionConfig[];
  default_version?: string;
}

export interface Preview {
  version: string;
  share: number;
  subscriptions?: string[];
}

export interface Routing {
  default_version: string;
  preview?: Preview | null;
  retired: string[];
}

export interface VersionView {
  name: string;
  description?: string | null;
  url: string;
  default: boolean;
  preview: boolean;
  retired: boolean;
}

export interface Versions {
  server: string;
  routing: Routing;
  versions: VersionView[];
}

export interface Tool {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: JsonSchema;
  [k: string]: unknown;
}

export interface ToolList {
  server: string;
  version: string | null;
  reachable: boolean;
  error: string | null;
  tools: Tool[];
}

export interface Counts {
  requests: number;
  errors: number;
}

export interface Traffic {
  /** By server; a server with versions also by version. */
  servers: Record<string, Counts & { versions?: Record<string, Counts> }>;
}

export interface ProductServer {
  server: string;
  tools?: string[] | null;
}

export interface Product {
  name: string;
  description?: string | null;
  servers: ProductServer[];
  subscription_required: boolean;
  approval_required: boolean;
  policies?: PolicyBinding[];
  etag?: string;
}

export type SubscriptionState = 'pending' | 'active' | 'suspended' | 'cancelled';

export interface Change {
  state: SubscriptionState;
  at: number;
  by: string;
}

export interface Subscription {
  id: string;
  product: string;
  subscriber: string;
  state: SubscriptionState;
  created_at: number;
  history: Change[];
  etag?: string;
}

export interface Subscribed extends Subscription {
  keys: { primary: string; secondary: string };
}

export interface Regenerated extends Subscription {
  key: { slot: 'primary' | 'secondary'; value: string };
}

export interface Component {
  policy: string;
  sha256: string;
  size: number;
  used_by: string[];
}

export interface Uploaded {
  policy: string;
  sha256: string;
  size: number;
}

export interface PolicyStep {
  name: string;
  phase: string;
  verdict: string;
  us?: number;
  [k: string]: unknown;
}

export interface CallStep {
  method: string;
  status: number;
  outcome: string;
  /** The JSON-RPC error code, when the step was refused. */
  code?: number;
  policies: PolicyStep[];
  [k: string]: unknown;
}

export interface JsonRpcError {
  code: number;
  message: string;
  data?: unknown;
}

export interface ContentItem {
  type: string;
  text?: string;
  data?: string;
  mimeType?: string;
  [k: string]: unknown;
}

export interface ToolResult {
  content?: ContentItem[];
  structuredContent?: unknown;
  isError?: boolean;
  [k: string]: unknown;
}

export interface PlaygroundAnswer {
  status: number;
  duration_ms: number;
  response: { jsonrpc?: string; id?: unknown; result?: ToolResult; error?: JsonRpcError } | null;
  steps: CallStep[];
}

/** The subset of JSON Schema the playground turns into a form. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  format?: string;
  minimum?: number;
  maximum?: number;
  [k: string]: unknown;
}
