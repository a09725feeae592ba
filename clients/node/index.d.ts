// Types of the taskswarm Node.js client. Wire objects keep the HTTP API's field names.

export type TaskState = 'scheduled' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'expired';
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface EnqueueRequest {
  queue?: string;
  kind: string;
  payload?: Json;
  priority?: number;
  idempotency_key?: string;
  coalesce_key?: string;
  run_at_ms?: number;
  delay_ms?: number;
  max_attempts?: number;
  backoff?: { initial_ms: number; multiplier: number; max_ms: number };
  lease_ms?: number;
  schedule_to_start_ms?: number;
  start_to_close_ms?: number;
  schedule_to_close_ms?: number;
  group?: string;
}

export interface EnqueueResponse { id: number; created: boolean; coalesced: boolean; state: TaskState }
export interface ErrorBody { error: { code: string; message: string; leader_id?: number; leader_addr?: string } }
export type ItemResult<T> = T | ErrorBody;

export interface TaskView {
  id: number; queue: string; kind: string; payload: Json; priority: number; state: TaskState;
  attempt: number; max_attempts: number;
  lease: { worker: string; token: number; lease_ms: number; expires_at_ms: number } | null;
  cancel_requested: boolean; result: Json | null; error: { code: string; message: string } | null;
  progress: Json | null; group: string | null; idempotency_key: string | null; coalesce_key: string | null;
  joined: number; created_at_ms: number; run_at_ms: number | null; finished_at_ms: number | null;
}

export interface EventView {
  task: number; queue: string; state?: TaskState; event: string; at_ms: number; group?: string;
  worker?: string; token?: number; attempt?: number; progress?: Json;
  error?: { code: string; message: string }; run_at_ms?: number;
}

export interface ClaimRequest {
  worker: string; queues?: string[]; kinds?: string[]; max?: number; lease_ms?: number;
  wait_ms?: number; min_priority?: number;
}
export interface ClaimedTask {
  id: number; queue: string; kind: string; payload: Json; priority: number; attempt: number;
  max_attempts: number; group: string | null;
  lease: { token: number; lease_ms: number; expires_at_ms: number };
}
export interface StateResponse { id: number; state: TaskState; duplicate?: boolean; next?: ClaimedTask[] }
export interface QueueView { name: string; paused: boolean; counts: Record<TaskState, number> }
export interface ClusterStatus {
  node_id: number; leader_id: number | null; term: number; last_log_index: number; applied_index: number;
  snapshot_index: number; purged_index: number; members: { id: number; addr: string; voter: boolean }[];
}
export interface BroadcastView { seq: number; channel: string; message: Json; at_ms: number }

export interface ClientOptions {
  /** Node URLs (any nodes; more survive failures). Default: TASKSWARM_SERVERS, then the local dev cluster. */
  servers?: string[] | string;
  /** Sent as `Authorization: Bearer`. Default: TASKSWARM_API_TOKEN. */
  apiToken?: string;
  requestTimeoutMs?: number;
  retryBudgetMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

export declare class Client {
  constructor(options?: ClientOptions);
  readonly servers: string[];
  newKey(): string;
  enqueue(task: EnqueueRequest): Promise<EnqueueResponse>;
  enqueueBatch(tasks: EnqueueRequest[]): Promise<ItemResult<EnqueueResponse>[]>;
  submit(task: EnqueueRequest): Promise<TaskHandle>;
  get(id: number, options?: { consistency?: 'linearizable' | 'local' }): Promise<TaskView>;
  wait(id: number, timeoutMs?: number, options?: { signal?: AbortSignal }): Promise<TaskView>;
  history(id: number): Promise<{ events: EventView[]; dropped: number }>;
  list(filter?: { queue?: string; state?: TaskState; after?: number; limit?: number }): Promise<{ tasks: TaskView[]; next: number | null }>;
  cancel(id: number): Promise<StateResponse>;
  requeue(id: number): Promise<StateResponse>;
  queues(): Promise<QueueView[]>;
  pause(queue: string): Promise<QueueView>;
  resume(queue: string): Promise<QueueView>;
  broadcast(channel: string, message: Json): Promise<number>;
  cluster(): Promise<ClusterStatus>;
  claim(req: ClaimRequest): Promise<ClaimedTask[]>;
  heartbeat(worker: string, leases: { task: number; token: number; progress?: Json; lease_ms?: number }[]): Promise<ItemResult<{ task: number; lease_ms: number; expires_at_ms: number; cancel_requested: boolean }>[]>;
  complete(id: number, token: number, result?: Json): Promise<StateResponse>;
  completeBatch(items: { task: number; token: number; result?: Json }[]): Promise<ItemResult<StateResponse>[]>;
  fail(id: number, req: { token: number; error: string; code?: string; retryable?: boolean; retry_after_ms?: number }): Promise<StateResponse>;
  release(id: number, token: number, delayMs?: number): Promise<StateResponse>;
  lifecycleEvents(filter?: { queue?: string; group?: string }, options?: { signal?: AbortSignal }): AsyncGenerator<EventView | { event: 'reconnected' | 'lagged' }>;
  taskEvents(id: number, options?: { signal?: AbortSignal }): AsyncGenerator<EventView>;
  broadcasts(options?: { after?: number; signal?: AbortSignal }): AsyncGenerator<BroadcastView>;
}

export declare class TaskHandle {
  readonly id: number;
  readonly enqueued: EnqueueResponse;
  wait(timeoutMs?: number): Promise<TaskView>;
  result<T = Json>(timeoutMs?: number): Promise<T>;
}

export interface TaskContext {
  task: ClaimedTask;
  id: number;
  kind: string;
  attempt: number;
  /** The fencing token of this lease. */
  token: number;
  /** Fires on cancel (`reason.reason === 'cancelled'`), lease loss (`lease_lost`, `lease_expired`) or shutdown. */
  signal: AbortSignal;
  progress(value: Json): void;
  release(delayMs?: number): void;
  worker: Worker;
}

export type Handler = (payload: any, ctx: TaskContext) => Promise<Json | void> | Json | void;

export interface WorkerOptions {
  queues?: string[];
  /** General slots (tasks at once). */
  slots?: number;
  /** Extra slots only for tasks with priority >= minPriority. */
  reserved?: { minPriority: number; slots: number }[];
  leaseMs?: number;
  claimWaitMs?: number;
  /** On shutdown, how long running handlers may finish before their signals fire. */
  graceMs?: number;
  workerId?: string;
  /** Shut down gracefully on SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
}

export declare class Worker {
  constructor(client: Client, options?: WorkerOptions);
  readonly workerId: string;
  readonly stats: { claimed: number; succeeded: number; failed: number; released: number; lost: number };
  handle(kind: string, handler: Handler): this;
  fallback(handler: Handler): this;
  run(): Promise<void>;
  close(): void;
}

export declare class TaskswarmError extends Error {}
export declare class RejectedError extends TaskswarmError { readonly status: number; readonly code: string; readonly serverMessage: string }
export declare class IndeterminateError extends TaskswarmError { readonly code: 'indeterminate' }
export declare class UnavailableError extends TaskswarmError { readonly code: 'unavailable'; readonly elapsedMs: number }
export declare class PermanentError extends TaskswarmError { constructor(message: string, options?: { code?: string }); readonly code: string }
export declare class RetryableError extends TaskswarmError { constructor(message: string, options?: { code?: string; retryAfterMs?: number }); readonly code: string; readonly retryAfterMs?: number }
export declare class TaskFailedError extends TaskswarmError { readonly task: TaskView; readonly state: TaskState; readonly code: string }
export declare const DEFAULT_SERVERS: string[];
export declare const FINISHED_STATES: Set<TaskState>;
