// Servers: every server and version, its backend, whether it answers, its routing, its tools,
// and its live request and error rates (from /api/traffic, polled while the page is shown).

import { useEffect, useRef, useState } from 'react';
import { get, type Answer } from '../api';
import type { Counts, ServerSummary, Traffic } from '../types';
import { ErrorNotice, Loading, PageHeading, useInterval, useLoad } from '../ui';
import { ServerCard } from './ServerCard';

const POLL_MS = 3000;

export interface Rate {
  requests: number;
  errors: number;
  /** Per second, over the last interval; null until two samples. */
  requestRate: number | null;
  errorRate: number | null;
  /** Of each version, for a server with versions. */
  versions: Record<string, Rate>;
}

interface Sample {
  at: number;
  traffic: Traffic;
}

/** A rate from two samples of totals, `dt` seconds apart (0: only one sample yet). */
function rate(now: Counts, before: Counts | undefined, dt: number): Omit<Rate, 'versions'> {
  const ok = dt > 0;
  return {
    requests: now.requests,
    errors: now.errors,
    requestRate: ok ? Math.max(0, now.requests - (before?.requests ?? 0)) / dt : null,
    errorRate: ok ? Math.max(0, now.errors - (before?.errors ?? 0)) / dt : null,
  };
}

/** The rates per server (and version), from the last two samples of the totals. */
function rates(prev: Sample | null, curr: Sample | null): Record<string, Rate> {
  const out: Record<string, Rate> = {};
  if (!curr) return out;
  const dt = prev ? (curr.at - prev.at) / 1000 : 0;
  for (const [name, now] of Object.entries(curr.traffic.servers)) {
    const before = prev?.traffic.servers[name];
    const versions: Record<string, Rate> = {};
    for (const [v, counts] of Object.entries(now.versions ?? {})) {
      versions[v] = { ...rate(counts, before?.versions?.[v], dt), versions: {} };
    }
    out[name] = { ...rate(now, before, dt), versions };
  }
  return out;
}

const IDLE: Rate = { requests: 0, errors: 0, requestRate: 0, errorRate: 0, versions: {} };

function useTraffic(): { rates: Record<string, Rate>; loaded: boolean; error: unknown } {
  const samples = useRef<{ prev: Sample | null; curr: Sample | null }>({ prev: null, curr: null });
  const [, setTick] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const inFlight = useRef(false);
  const poll = async () => {
    if (inFlight.current) return;
    inFlight.current = true;
    try {
      const a: Answer<Traffic> = await get('/api/traffic');
      samples.current = { prev: samples.current.curr, curr: { at: performance.now(), traffic: a.body } };
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      inFlight.current = false;
      setTick((t) => t + 1);
    }
  };
  useEffect(() => {
    void poll();
    const soon = window.setTimeout(() => void poll(), 1000);
    return () => window.clearTimeout(soon);
  }, []);
  useInterval(() => void poll(), POLL_MS);
  return { rates: rates(samples.current.prev, samples.current.curr), loaded: samples.current.curr !== null, error };
}

export function Servers() {
  const list = useLoad((signal) => get<{ servers: ServerSummary[] }>('/api/servers', signal), []);
  const traffic = useTraffic();
  // Reload asks every card again too, not only the list.
  const [generation, setGeneration] = useState(0);
  const servers = list.data?.body.servers ?? [];

  return (
    <>
      <PageHeading>Servers</PageHeading>
      <p className="muted">
        Every server and version the gateway serves. Rates are per second over the last {POLL_MS / 1000} s, refreshed while this page is open.
      </p>
      <div className="toolbar">
        <button
          type="button"
          className="secondary"
          onClick={() => {
            list.reload();
            setGeneration((g) => g + 1);
          }}
        >
          Reload
        </button>
      </div>
      <ErrorNotice error={list.error} />
      {traffic.error ? <p className="muted">Live traffic is not available: {String((traffic.error as Error).message ?? traffic.error)}</p> : null}
      {list.loading && !list.data && <Loading what="servers" />}
      {list.data && servers.length === 0 && <p>No servers are configured.</p>}
      <div className="cards">
        {servers.map((s) => (
          <ServerCard key={s.name} summary={s} generation={generation} rate={traffic.rates[s.name] ?? (traffic.loaded ? IDLE : null)} />
        ))}
      </div>
    </>
  );
}
