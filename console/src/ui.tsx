// Small pieces every page uses: loading data, messages, badges, JSON, copying.

import { useCallback, useEffect, useId, useRef, useState, type DependencyList, type ReactNode } from 'react';
import { ApiError, describe } from './api';

export interface Loaded<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change and on `reload()`; a newer run makes an older one moot. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: DependencyList): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    load(ctl.signal).then(
      (d) => {
        if (ctl.signal.aborted) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if (ctl.signal.aborted) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => ctl.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** Runs `f` every `ms` while mounted. */
export function useInterval(f: () => void, ms: number): void {
  const saved = useRef(f);
  saved.current = f;
  useEffect(() => {
    const id = window.setInterval(() => saved.current(), ms);
    return () => window.clearInterval(id);
  }, [ms]);
}

/** A message that screen readers announce: `alert` for failures, `status` otherwise. */
export function Notice({ kind, children }: { kind: 'error' | 'ok' | 'info'; children: ReactNode }) {
  return (
    <div className={`notice notice-${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}

/** A failed request: the problem's detail, and the places it names. */
export function ErrorNotice({ error }: { error: unknown }) {
  if (!error) return null;
  const places = error instanceof ApiError ? (error.problem?.errors ?? []) : [];
  return (
    <Notice kind="error">
      <p>{describe(error)}</p>
      {places.length > 0 && (
        <ul className="places">
          {places.map((p, i) => (
            <li key={i}>
              <code>{p.path}</code>: {p.detail}
            </li>
          ))}
        </ul>
      )}
    </Notice>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** A short status word; `label` is read out before it by screen readers only ("State: active"). */
export function Badge({ tone, children, label }: { tone: 'good' | 'bad' | 'warn' | 'neutral' | 'info'; children: ReactNode; label?: string }) {
  return (
    <span className={`badge badge-${tone}`}>
      {label && <span className="sr-only">{label} </span>}
      {children}
    </span>
  );
}

export function Json({ value, label }: { value: unknown; label?: string }) {
  return (
    <pre className="json" aria-label={label} tabIndex={0}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
      window.setTimeout(() => setDone(false), 2000);
    } catch {
      setDone(false);
    }
  };
  return (
    <button type="button" className="secondary small" onClick={copy} aria-label={label}>
      {done ? 'Copied' : 'Copy'}
    </button>
  );
}

export function when(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toLocaleString();
}

/** A page's heading, focused when the page opens so keyboard and screen reader users start there. */
export function PageHeading({ children }: { children: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

/** A labelled choice among options, as a native select (keyboard and screen readers for free). */
export function Choice({
  label,
  options,
  value,
  onChange,
}: {
  label: string;
  options: { value: string; label: string }[];
  value: string;
  onChange: (value: string) => void;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}
